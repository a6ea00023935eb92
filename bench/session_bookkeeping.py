"""CPU of the ecdh session's Python bookkeeping on each side, function by function, without a transport.

    .venv/bin/python bench/session_bookkeeping.py                  # 100,000 × 100,000, 10 % hits, best of 3
    .venv/bin/python bench/session_bookkeeping.py --n 50000 --repeat 5

Runs whole sessions in this process (``tests/test_session_machines.py`` style: the
responder machine over a real ``ResponderState``, the requester machine over an ecdh half
with :class:`BlindAhead`, every message serialised and parsed as on the wire, the cyclic
GC paused as in ``matcher match``), then the requester's ``result()`` and hits file.
Each function of interest is wrapped to add up the CPU time of the thread that runs it
(``time.thread_time``): the per-element and per-hit Python around the C kernels, not
the kernels themselves (they run on the kernel threads). Prints the best of
``--repeat`` sessions per line, in ns per element of the request. The host's speed
drifts, so compare two builds by running them alternately.
"""

from __future__ import annotations

import argparse
import collections
import functools
import gc
import inspect
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from clients.sessions import base as requester_base  # noqa: E402
from clients.sessions import ecdh as requester_ecdh  # noqa: E402
from matcher import requester as requester_run  # noqa: E402
from matcher.identity.conformance import conformance  # noqa: E402
from matcher.identity.records import LoadResult  # noqa: E402
from matcher.parallel import Workers  # noqa: E402
from matcher.protocols import ecdh, ecdh_index  # noqa: E402
from matcher.server.state import ResponderState  # noqa: E402
from matcher.sessions import ecdh as responder_ecdh  # noqa: E402
from matcher.sessions import responder as responder_machine  # noqa: E402
from matcher.sessions.limits import WIRE_VERSION  # noqa: E402
from matcher.sessions.requester import RequesterMachine  # noqa: E402
from matcher.v1 import matcher_pb2 as pb  # noqa: E402
from tests.harness import KEYSPEC, _responder_config, synthetic_sets  # noqa: E402

#: (label, owner, attribute, is a generator): the functions measured, by the side that runs them
MEASURED = [
    ("responder: refuse_repeats", responder_machine, "refuse_repeats", False),
    ("responder: on_elements (+ replies)", responder_ecdh.EcdhResponderSession, "on_elements", True),
    ("responder: opening (setup chunks)", responder_ecdh.EcdhResponderSession, "opening", True),
    ("requester: chunks", requester_ecdh.EcdhRequesterSession, "chunks", True),
    ("requester: on_setup", requester_ecdh.EcdhRequesterSession, "on_setup", False),
    ("requester: on_evaluated (all of it)", requester_ecdh.EcdhRequesterSession, "on_evaluated", False),
    ("requester:   _check_distinct", requester_ecdh.EcdhRequesterSession, "_check_distinct", False),
    ("requester:   lookup_outputs (before)", ecdh_index.SetupIndex, "lookup_outputs", False),
    ("requester:   hits (after)", ecdh_index.SetupIndex, "hits", False),
    ("requester:   add_hit (before)", requester_base.RequesterSession, "add_hit", False),
    ("requester:   add_hits (after)", requester_base.RequesterSession, "add_hits", False),
    ("requester:   _fold_early", requester_ecdh.EcdhRequesterSession, "_fold_early", False),
    ("requester: result", requester_ecdh.EcdhRequesterSession, "result", False),
    ("requester: write_hits", requester_run, "write_hits", False),
]


def _instrument(spent: collections.Counter) -> None:
    for label, owner, name, generator in MEASURED:
        fn = getattr(owner, name, None)
        if fn is None:  # a function of another version of the code (the table names both)
            continue

        def timed(*args, _fn=fn, _label=label, _generator=generator, **kwargs):
            start = time.thread_time()
            try:
                out = _fn(*args, **kwargs)
                return iter(list(out)) if _generator else out
            finally:
                spent[_label] += time.thread_time() - start

        setattr(owner, name, functools.wraps(fn)(timed))


def session(state: ResponderState, records, pool: Workers, spent: collections.Counter, out: Path) -> int:
    """One whole session, requester mode; returns the hits written. Adds the sides' totals to ``spent``."""
    ahead = requester_ecdh.BlindAhead.for_pool(pool)
    if ahead is None:
        raise SystemExit("this bench measures the IFMA path (BlindAhead): the extension is not in use here")
    ahead.feed(records)
    half = requester_ecdh.EcdhRequesterSession(records, KEYSPEC, "requester", workers=pool, ahead=ahead)
    half.use_policy(responder_machine.policy(state), "responder")
    norm = conformance(KEYSPEC.norm_version)
    hello = pb.Hello(protocol="ecdh", key_spec_fingerprint=KEYSPEC.fingerprint(), reveal="requester",
                     wire_version=WIRE_VERSION, norm_conformance_digest=norm.digest, norm_libraries=norm.libraries)
    requester = RequesterMachine(half, hello, state.settings.max_chunk_elements)
    responder = responder_machine.ResponderMachine(state)

    def answer(responses) -> None:
        start = time.thread_time()
        wire = [r.SerializeToString() for r in responses]
        spent["responder (all)"] += time.thread_time() - start
        start = time.thread_time()
        for data in wire:
            requester.receive(pb.MatchResponse.FromString(data))
        spent["requester (all)"] += time.thread_time() - start

    requests = requester.requests()
    responder.on_hello(next(requests))
    answer(responder.accept("s-1", "agency-b"))
    while True:
        start = time.thread_time()
        request = next(requests, None)
        data = request.SerializeToString() if request is not None else b""
        spent["requester (all)"] += time.thread_time() - start
        if request is None:
            break
        start = time.thread_time()
        replies = list(responder.receive(pb.MatchRequest.FromString(data)))
        spent["responder (all)"] += time.thread_time() - start
        answer(replies)
    start = time.thread_time()
    result = requester.result()
    requester_run.write_hits(out, result.hits)
    spent["requester (all)"] += time.thread_time() - start
    return len(result.hits)


class _NoBlinding:
    """A pool that takes BlindAhead's batches and runs none (the hits' bookkeeping needs no blinded element)."""

    size = 1

    def submit(self, fn, *args) -> None:
        return None


def direct(state: ResponderState, records, repeat: int, out: Path) -> dict[str, float]:
    """The changed functions called directly on fixed input in this thread (no kernels running beside):
    seconds, best of ``repeat``. Each line is the work the session does at that step, in either version."""
    n = len(records)
    chunk = state.settings.max_chunk_elements
    blinded = ecdh.blind_tokens(ecdh.new_key(), [t for r in records for _, t in r.tokens])
    wire = [pb.ElementChunk(offset=i, elements=blinded[i : i + chunk]).SerializeToString()
            for i in range(0, n, chunk)]
    # the machine lists a chunk's elements once before the check (after) or hands it the message's field (before)
    listed_by_machine = "list(elements)" in inspect.getsource(responder_machine.ResponderMachine.receive)

    def repeats() -> None:
        seen: set[int] = set()
        parsed = [pb.ElementChunk.FromString(w) for w in wire]
        start = time.process_time()
        for c in parsed:
            responder_machine.refuse_repeats(seen, list(c.elements) if listed_by_machine else c.elements, c.offset)
        spent["responder: repeat check"] += time.process_time() - start

    hello = pb.Hello(protocol="ecdh", reveal="requester", request_size=n)

    def opening() -> None:
        session = responder_ecdh.EcdhResponderSession(state, hello)
        session.accepted(pb.Accepted())
        start = time.process_time()
        messages = list(session.opening())
        spent["responder: setup chunks (opening)"] += time.process_time() - start
        assert sum(len(m.setup.tags) for m in messages) == len(state.current().setup)

    setup = state.current().setup
    tokens = [t for r in records for _, t in r.tokens]
    outputs_joined = ecdh.setup_outputs(state.current().key.key, tokens)
    outputs = [outputs_joined[i : i + 64] for i in range(0, len(outputs_joined), 64)]
    index = ecdh_index.SetupIndex.from_setup(setup, checked=True)
    per_hit = hasattr(ecdh_index.SetupIndex, "hits")  # (after)

    def lookup() -> None:
        found = 0
        start = time.process_time()
        for t0 in range(0, n, chunk):
            outs = outputs[t0 : t0 + chunk]
            if per_hit:
                found += len(index.hits(outs, tokens, t0, first_token=t0))
            else:
                found += sum(r is not None for r in index.lookup_outputs(outs, tokens[t0 : t0 + chunk], t0))
        spent["requester: chunk lookups"] += time.process_time() - start
        assert found == n // 10

    refs = dict(zip(tokens, index.lookup_outputs(outputs, tokens), strict=True))

    def hits_file() -> None:
        ahead = requester_ecdh.BlindAhead(_NoBlinding())  # its first-record map only: nothing is sent
        ahead.feed(records)
        session = requester_ecdh.EcdhRequesterSession(records, KEYSPEC, "requester", ahead=ahead)
        session.accepted = pb.Accepted()
        hits = [(t, refs[tok]) for t, tok in enumerate(session.tokens) if refs[tok] is not None]
        start = time.process_time()
        for lo in range(0, len(hits), chunk // 10):
            for t, ref in hits[lo : lo + chunk // 10]:
                session.add_hit(t, ref)
            session._fold_early()
        requester_run.write_hits(out, session.result().hits)
        spent["requester: hits folded, result, hits file"] += time.process_time() - start

    spent: collections.Counter = collections.Counter()
    best: dict[str, float] = {}
    for fn in (repeats, opening, lookup, hits_file):
        for _ in range(repeat):
            spent.clear()
            fn()
            for label, seconds in spent.items():
                best[label] = min(best.get(label, seconds), seconds)
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000, help="elements each side (default 100,000; 10 %% shared)")
    ap.add_argument("--repeat", type=int, default=3, help="sessions; the least CPU of each line counts (default 3)")
    ap.add_argument("--direct-only", action="store_true", help="only the direct calls, no sessions")
    args = ap.parse_args()
    requester_records, responder_records = synthetic_sets(args.n, args.n, args.n // 10)
    gc.disable()  # as `matcher match` with BlindAhead: paused through the load and the session
    best: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        state = ResponderState(_responder_config(tmp, None, 2, 2_000_000),
                               LoadResult(responder_records, [], len(responder_records)))
        gc.freeze()
        calls = direct(state, requester_records, max(args.repeat, 5), Path(tmp) / "hits.csv")
        pool = Workers(2)
        spent: collections.Counter = collections.Counter()
        _instrument(spent)
        try:
            for _ in range(0 if args.direct_only else args.repeat):
                spent.clear()
                hits = session(state, requester_records, pool, spent, Path(tmp) / "hits.csv")
                for label, seconds in spent.items():
                    best[label] = min(best.get(label, seconds), seconds)
        finally:
            pool.close()
            state.close()
    print(f"backend {ecdh.GROUP_BACKEND}, {args.n:,} × {args.n:,}, {args.n // 10:,} hits")
    print(f"called directly, one thread (process CPU, best of {max(args.repeat, 5)}; ns per element of the request)")
    for label, seconds in calls.items():
        print(f"{label:44s} {seconds / args.n * 1e9:7.0f}")
    if args.direct_only:
        return 0
    print(f"in whole sessions ({hits:,} hits; thread CPU, best of {args.repeat} sessions; ns per element)")
    for label in ["responder (all)", *[m[0] for m in MEASURED if m[0].startswith("responder")],
                  "requester (all)", *[m[0] for m in MEASURED if m[0].startswith("requester")]]:
        if label in best:
            print(f"{label:44s} {best[label] / args.n * 1e9:7.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
