"""Cost of the checks against a dishonest responder (ecdh): a session with and without them.

    python bench/label_binding.py --size 20000 --rounds 3

One ecdh session of ``--size`` requester elements against a setup of ``--size`` entries
(a tenth of them shared), driven through the real requester half
(:class:`clients.sessions.ecdh.EcdhRequesterSession`: blind, unblind, look up, open the
labels, check) with the responder's evaluation in the same process, single core, no
gRPC. Measured in the same run, rounds interleaved:

* **with** the binding, as shipped: each label's associated data carries SHA-256 of its
  token, every reply is checked distinct, and ``CANARIES`` check elements are sent
  and verified;
* **without**: the same code with the label's associated data a constant (the label
  format before the binding), no distinctness check and no check elements.

Prints µs per requester element of each, their ratio, and the setup's µs per watchlist
entry both ways (one SHA-256 more per entry with the binding). Times are this process's
CPU time (``time.process_time``: the run is single-threaded), the lowest of the rounds run
in ABBA order, so other load on a shared machine disturbs the ratio less than wall-clock
medians would. As the difference is within that noise, the added work is also timed on
its own (the label's SHA-256 per hit, the distinct-reply set per element, the check
elements' share of the session) and given as µs per element and as a ratio.
``--json PATH`` also writes the figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from clients.sessions import ecdh as req_ecdh  # noqa: E402
from matcher.parallel import inline  # noqa: E402
from matcher.protocols import ecdh  # noqa: E402
from matcher.storage.setup_cache import setup_id  # noqa: E402
from matcher.v1 import matcher_pb2 as pb  # noqa: E402
from tests.harness import KEYSPEC, synthetic_sets  # noqa: E402

CHUNK = 4096


@contextmanager
def without_binding():
    """The label format and requester checks as they were before the binding."""
    saved = ecdh.label_ad, req_ecdh.CANARIES, req_ecdh.EcdhRequesterSession._check_distinct
    ecdh.label_ad = lambda token: b"matcher/v1/label"
    req_ecdh.CANARIES = 0
    req_ecdh.EcdhRequesterSession._check_distinct = lambda self, elements: None
    try:
        yield
    finally:
        ecdh.label_ad, req_ecdh.CANARIES, req_ecdh.EcdhRequesterSession._check_distinct = saved


def build_setup(key: bytes, responder, tag_len: int) -> tuple[ecdh.ResponderSetup, float]:
    entries = [(t, r.case_ref.encode()) for r in responder for _, t in r.tokens]
    t0 = time.process_time()
    setup = ecdh.responder_setup(key, entries, tag_len)
    return setup, time.process_time() - t0


def session(key: bytes, setup: ecdh.ResponderSetup, requester) -> tuple[float, int]:
    """One session through the requester half; returns (seconds, hits)."""
    t0 = time.process_time()
    req = req_ecdh.EcdhRequesterSession(requester, KEYSPEC, "requester", workers=inline())
    req.on_accepted(pb.Accepted(session_id="bench", tag_length=setup.tag_length, setup_size=len(setup),
                                setup_id=setup_id(setup), reveal="requester"))
    step = 16384
    for i in range(0, len(setup), step):
        req.on_setup(pb.SetupChunk(tags=setup.tags[i : i + step], labels=setup.labels[i : i + step]))
    offset = 0
    for chunk in req.chunks(CHUNK):
        req.on_evaluated(pb.ElementChunk(offset=offset, elements=ecdh.evaluate(key, chunk, offset)))
        offset += len(chunk)
    req.on_summary(pb.Summary(elements_evaluated=offset))
    return time.process_time() - t0, len(req.result().hits)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    n = args.size
    requester, responder = synthetic_sets(n, n, n // 10)
    key = ecdh.new_key()
    tag_len = ecdh.tag_length(n, n)
    with_setup, with_setup_s = build_setup(key, responder, tag_len)
    with without_binding():
        plain_setup, plain_setup_s = build_setup(key, responder, tag_len)
    times: dict[str, list[float]] = {"with": [], "without": []}

    def run(variant: str) -> None:
        if variant == "with":
            seconds, hits = session(key, with_setup, requester)
        else:
            with without_binding():
                seconds, hits = session(key, plain_setup, requester)
        assert hits == n // 10, hits
        times[variant].append(seconds)

    for r in range(args.rounds):  # ABBA: neither variant always runs first
        for variant in (("with", "without") if r % 2 == 0 else ("without", "with")):
            run(variant)
    us = {k: min(v) / n * 1e6 for k, v in times.items()}
    # The added work on its own, per element: one SHA-256 of the token per hit (a tenth of
    # the elements here), one set insertion per reply, and the check elements' share.
    tokens = [t for r in requester for _, t in r.tokens]
    t0 = time.process_time()
    for t in tokens[: n // 10]:
        ecdh.label_ad(t)
    ad_s = time.process_time() - t0
    replies = ecdh.blind_tokens(key, tokens[:2000])
    t0 = time.process_time()
    seen: set[bytes] = set()
    for _ in range(n // 2000):
        seen.clear()
        for e in replies:
            seen.add(e)
    set_s = (time.process_time() - t0) / (n // 2000 * 2000) * n
    added_us = (ad_s + set_s) / n * 1e6 + us["without"] * req_ecdh.CANARIES / n
    figures = {
        "size": n, "rounds": args.rounds, "canaries": req_ecdh.CANARIES,
        "session_us_per_element_with": round(us["with"], 2),
        "session_us_per_element_without": round(us["without"], 2),
        "session_ratio": round(us["with"] / us["without"], 4),
        "added_work_us_per_element": round(added_us, 3),
        "added_work_ratio": round(1 + added_us / us["without"], 4),
        "setup_us_per_entry_with": round(with_setup_s / n * 1e6, 2),
        "setup_us_per_entry_without": round(plain_setup_s / n * 1e6, 2),
    }
    print(f"ecdh session, {n} elements vs {n} setup entries ({n // 10} hits), one core, CPU time, "
          f"best of {args.rounds}:")
    print(f"  with the binding and checks: {us['with']:.2f} µs per element")
    print(f"  without:                     {us['without']:.2f} µs per element")
    print(f"  ratio with/without:          {figures['session_ratio']:.3f}")
    print(f"  the added work alone:        {added_us:.3f} µs per element "
          f"(ratio {figures['added_work_ratio']:.4f}: label AD per hit, distinct-reply set, "
          f"{req_ecdh.CANARIES} check elements)")
    print(f"  setup: {figures['setup_us_per_entry_with']:.2f} vs {figures['setup_us_per_entry_without']:.2f} "
          "µs per watchlist entry (with/without)")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
