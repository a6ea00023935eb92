"""Requester half of ``ecdh``: send a·H(x), index the setup, unblind replies, open labels.

What this side checks of the responder (a dishonest responder must not make a false hit):

* every label opens only under its token's associated data (matcher.protocols.ecdh):
  a permuted, repeated or substituted reply whose tag is in the setup does not open
  for the element it was returned for, and ends the session (ResponderMisbehaved);
* two elements never receive the same reply;
* ``CANARIES`` extra elements, at secret random positions, are blindings of one of the
  session's own tokens under another scalar ``r·a``: their replies must unblind to the
  same point as that token's reply. A responder that replays replies of another
  session, or replaces replies, fails these checks; one that changes a single reply
  is caught with a chance of about ``2·CANARIES / request size``, and such a change
  can only lose a hit, never make one (the labels above).

Nothing is written as a hit before every reply is in and every check has passed.
"""

from __future__ import annotations

import bisect
import os
import random
import threading
from array import array
from collections import deque
from collections.abc import Iterator, Sequence

from clients.sessions.base import MatchResult, RequesterSession
from matcher.errors import InvalidElement, ProtocolViolation, ResponderMisbehaved
from matcher.identity.records import TokenisedRecord
from matcher.parallel import (
    SMALL_BATCH,
    ThreadWorkers,
    Workers,
    inline,
    kernel_threads,
    kernel_threads_beside_caller,
)
from matcher.protocols import ecdh, ecdh_index, ecdh_reveal
from matcher.v1 import matcher_pb2 as pb

#: Most setup entries a requester accepts to hold (about 6 GB at 60 bytes an entry).
MAX_SETUP_ENTRIES = 100_000_000

#: Check elements added to a session (requester and both modes); charged like any element.
CANARIES = 8


#: ``0`` turns off blinding while the records are read (:class:`BlindAhead`), for comparisons
BLIND_AHEAD_ENV = "MATCHER_BLIND_AHEAD"


class BlindAhead:
    """Hash to group and blinding of the distinct tokens while the records are still being read.

    The session key ``a`` is drawn here, before the load. :meth:`feed` takes the records
    in file order (``load_records(on_records=...)``), keeps each token's first
    occurrence (the order the session sends them in, as ``dict.fromkeys`` over the
    records) and hands every ``BATCH`` new tokens to the kernel threads, which run
    ``a·H(t)`` without the GIL while this thread goes on parsing. The session
    (``EcdhRequesterSession(..., ahead=this)``) then takes the blinded elements in
    order; what it sends is the same, byte for byte, as blinding at send time under
    the same key. Nothing goes to the responder before the load is complete: the
    Hello announces the request size.
    """

    #: tokens a batch: the chunk size the client sends by default
    BATCH = 4096

    def __init__(self, pool: Workers, during_load: Workers | None = None) -> None:
        """``pool``: the kernel threads for after the load; ``during_load``: those used while it runs."""
        self.key = ecdh.new_key()
        self.tokens: list[bytes] = []
        self.records_fed = 0
        self._seen: set[bytes] = set()
        #: per token (in ``tokens``' order), the index of the first record that yields it, and the
        #: tokens yielded more than once: a hit's records are then found without a pass over all records
        self.first_record = array("I")
        self.repeated: set[bytes] = set()
        self._pool = pool
        self._loading_pool = during_load or pool
        self._submitted = 0  # tokens handed to a batch so far
        self._batches: list = []  # one future (or a finished list, or None once taken) per BATCH tokens
        self._closed = False

    def __repr__(self) -> str:  # the key and the tokens identify persons: never shown
        return f"BlindAhead(<{len(self.tokens)} tokens, {self._submitted} handed to the kernels>)"

    @classmethod
    def for_pool(cls, workers: Workers) -> BlindAhead | None:
        """One over the GIL-free kernel threads for ``workers``, or None where blinding ahead cannot overlap.

        None with the portable backend (its kernels hold the GIL), a Dask cluster, one
        core, ``MATCHER_KERNEL_POOL=processes`` or ``MATCHER_BLIND_AHEAD=0``: the
        session then blinds at send time as before.
        """
        if os.environ.get(BLIND_AHEAD_ENV, "").strip() == "0" or not ecdh.KERNELS_RELEASE_GIL:
            return None
        pool = kernel_threads(workers)
        if not isinstance(pool, ThreadWorkers):
            return None
        # While the file is read, one core stays with the parser; after it, every core blinds.
        return cls(pool, kernel_threads_beside_caller(workers))

    def feed(self, records: Sequence[TokenisedRecord]) -> None:
        """The next records of the file, in order (each record once)."""
        if self._closed:
            raise RuntimeError("BlindAhead.feed after the session took the tokens")
        seen, tokens, first, repeated = self._seen, self.tokens, self.first_record, self.repeated
        for i, rec in enumerate(records, self.records_fed):
            for _, t in rec.tokens:
                if t not in seen:
                    seen.add(t)
                    tokens.append(t)
                    first.append(i)
                else:
                    repeated.add(t)
        self.records_fed += len(records)
        # Small files stay inline (as a session below 2·SMALL_BATCH tokens does): see take().
        while len(tokens) - self._submitted >= self.BATCH and len(tokens) >= 2 * SMALL_BATCH:
            self._submit(self._submitted + self.BATCH)

    def _submit(self, end: int, pool: Workers | None = None) -> None:
        part = self.tokens[self._submitted : end]
        self._batches.append((pool or self._loading_pool).submit(ecdh.blind_tokens, self.key, part))
        self._submitted = end

    def take(self) -> list[bytes]:
        """The distinct tokens, once the load is complete (blinding of the rest is started)."""
        self._closed = True
        self._seen = set()  # not needed any more: the session has its own bookkeeping
        if self._loading_pool is not self._pool:  # batches not started yet: to every core now
            for b, part in enumerate(self._batches):
                if not isinstance(part, list) and part.cancel():
                    start = b * self.BATCH
                    part = self.tokens[start : start + self.BATCH]
                    self._batches[b] = self._pool.submit(ecdh.blind_tokens, self.key, part)
        if self._submitted < len(self.tokens):
            if len(self.tokens) >= 2 * SMALL_BATCH:
                self._submit(len(self.tokens), self._pool)
            else:
                self._batches.append(ecdh.blind_tokens(self.key, self.tokens[self._submitted :]))
                self._submitted = len(self.tokens)
        return self.tokens

    def blinded(self, t0: int, t1: int) -> list[bytes]:
        """``a·H(tokens[t0:t1])``; calls come in increasing order, and each batch is freed once passed."""
        out: list[bytes] = []
        b = t0 // self.BATCH
        while b < len(self._batches) and b * self.BATCH < t1:
            part = self._batches[b]
            if part is None:
                raise RuntimeError("blinded elements taken twice")
            if not isinstance(part, list):
                part = self._batches[b] = part.result()
            base = b * self.BATCH
            out.extend(part[max(t0 - base, 0) : t1 - base])
            if base + len(part) <= t1:
                self._batches[b] = None
            b += 1
        return out

    def cancel(self) -> None:
        """Stop the batches not yet started (the load failed or the session ended early)."""
        self._closed = True
        for part in self._batches:
            if part is not None and not isinstance(part, list):
                part.cancel()
        self._batches = []


class EcdhRequesterSession(RequesterSession):
    """Diffie-Hellman PSI, requester side, under a fresh session key ``a``."""

    protocol = "ecdh"

    _cache_save: _CacheSave | None = None

    def result(self) -> MatchResult:
        """The hits (base class), once the responder's setup is in the requester's cache."""
        self._hit_refs.extend(self._hits_later)
        self._hits_later.clear()
        try:
            return super().result()
        finally:
            saving, self._cache_save = self._cache_save, None
            if saving is not None:
                saving.wait()

    def __init__(self, records, keyspec, reveal, workers: Workers | None = None, ahead: BlindAhead | None = None
                 ) -> None:
        """``ahead``: the tokens of exactly these ``records``, already being blinded (see :class:`BlindAhead`)."""
        if ahead is not None and ahead.records_fed != len(records):
            raise ValueError(f"BlindAhead was fed {ahead.records_fed} records, the session has {len(records)}")
        self._ahead = ahead
        super().__init__(records, keyspec, reveal)
        if workers is not None and ecdh.KERNELS_RELEASE_GIL:
            workers = kernel_threads(workers)  # GIL-free kernels: threads, no copies to worker processes
        self._workers = workers if workers is not None and len(self.tokens) >= 2 * SMALL_BATCH else inline()
        self._pool = workers if workers is not None else inline()
        self._key = ahead.key if ahead is not None else ecdh.new_key()
        self._inverse = ecdh.invert_key(self._key)
        self._index: ecdh_index.SetupIndex | None = None
        self._cache = None
        self._responder = ""
        self._cached: ecdh_index.ReceivedRows | None = None  # the cached setup, as its rows
        self._cached_id = ""  # setup id of _cached (the load checked the content against it)
        self._received = False
        self._label_length = 0
        self._replies: set[bytes] = set()  # every reply seen: two elements never get the same point
        self._hits: list[tuple[int, bytes, bytes]] = []  # (position, b·H(x), reply b·a·H(x)) of each hit
        self._hits_later: list[tuple[int, bytes]] = []  # hits on tokens of several records: folded by result()
        rng = random.SystemRandom()
        self.cardinality = reveal == "cardinality"
        if self.cardinality:
            # The responder learns which positions matched: a random order makes that meaningless.
            if ahead is None:
                rng.shuffle(self.tokens)
            else:  # the same shuffle of the tokens and of their blinded elements
                order = list(range(len(self.tokens)))
                rng.shuffle(order)
                blinded = ahead.blinded(0, len(self.tokens))
                self.tokens = [self.tokens[i] for i in order]
                self._shuffled = [blinded[i] for i in order]
        canaries = 0 if self.cardinality or not self.tokens else CANARIES
        total = len(self.tokens) + canaries
        self._canary_at = sorted(rng.sample(range(total), canaries))
        # canary c: (position, base token index, its key r·a, that key's inverse)
        self._canaries: dict[int, tuple[int, bytes, bytes]] = {}
        for pos in self._canary_at:
            r_a = ecdh.multiply_keys(ecdh.new_key(), self._key)
            self._canaries[pos] = (rng.randrange(len(self.tokens)), r_a, ecdh.invert_key(r_a))
        self._canary_out: dict[int, bytes] = {}  # position -> output hash of its unblinded reply
        #: reply chunks whose unblinding runs on the kernel threads: (offset, first token, replies,
        #: (position, reply) pairs without the check elements or [], their running unblinding)
        self._unblinding: deque = deque()
        self._base_out: dict[int, bytes] = {}  # base token index -> output hash of its reply
        self._bases = {base for base, _, _ in self._canaries.values()}

    def _distinct_tokens(self, records) -> list[bytes]:
        return self._ahead.take() if self._ahead is not None else super()._distinct_tokens(records)

    def hit_owners(self, token_indices: Sequence[int]) -> dict[int, list[tuple[int, str]]]:
        """As the base class, from :class:`BlindAhead`'s first-record map where it applies.

        A token yielded by one record only (nearly all) is looked up in that record; the
        rest go through the base class's pass over the records (for 1M records and 100k
        hits, 0.25 s at the end of the match).
        """
        ahead = self._ahead
        if ahead is None or self.cardinality:  # (cardinality shuffles the tokens; it has no owners to find)
            return super().hit_owners(token_indices)
        out: dict[int, list[tuple[int, str]]] = {}
        rest: list[int] = []
        tokens, records, first, repeated = self.tokens, self.records, ahead.first_record, ahead.repeated
        for t in token_indices:
            if repeated and tokens[t] in repeated:
                rest.append(t)
                continue
            r = first[t]
            pairs = records[r].tokens
            if len(pairs) == 1:  # the record's one token is this one (it is the first record that yields it)
                out[t] = [(r, pairs[0][0])]
            else:
                token = tokens[t]
                out[t] = [(r, key) for key, tok in pairs if tok == token]
        if rest:
            out.update(super().hit_owners(rest))
        return out

    @property
    def request_size(self) -> int:
        return len(self.tokens) + len(self._canary_at)

    def use_policy(self, policy: pb.Policy, responder: str, setup_cache=None) -> None:
        self._cache, self._responder = setup_cache, responder
        if setup_cache is not None and policy.setup_id:
            self._cached = setup_cache.load(responder, policy.setup_id)
            if self._cached is not None:
                # load() refuses content whose setup id is not this one: no need to hash it again
                self._cached_id = policy.setup_id

    def fill_hello(self, hello: pb.Hello) -> None:
        if self._cached is not None:
            hello.cached_setup_id = self._cached_id

    @property
    def progress_total(self) -> int:
        return self.request_size

    def chunks(self, chunk_elements: int) -> Iterator[list[bytes]]:
        # Blinding runs ahead on the workers while earlier chunks are on the wire.
        bounds = []
        for off in range(0, self.request_size, chunk_elements):
            end = min(off + chunk_elements, self.request_size)
            bounds.append((off, end, self._first_token(off), self._first_token(end)))
        blinded_batches: Iterator[list[bytes]]
        if self._ahead is None:
            batches = ((self._key, self.tokens[t0:t1]) for _, _, t0, t1 in bounds)
            blinded_batches = self._workers.map_ordered(ecdh.blind_tokens, batches)
        elif self.cardinality:
            blinded_batches = (self._shuffled[t0:t1] for _, _, t0, t1 in bounds)
        else:
            blinded_batches = (self._ahead.blinded(t0, t1) for _, _, t0, t1 in bounds)
        for (off, end, _, _), blinded in zip(bounds, blinded_batches, strict=True):
            if bisect.bisect_left(self._canary_at, off) == bisect.bisect_left(self._canary_at, end):
                yield blinded  # no check element in this chunk (the common case)
                continue
            real = iter(blinded)
            out = []
            for pos in range(off, end):
                canary = self._canaries.get(pos)
                if canary is None:
                    out.append(next(real))
                else:
                    base, r_a, _ = canary
                    out.append(ecdh.blind_tokens(r_a, [self.tokens[base]])[0])
            yield out

    def _first_token(self, position: int) -> int:
        """Index of the first token sent at or after ``position``."""
        return position - bisect.bisect_left(self._canary_at, position)

    def on_accepted(self, accepted: pb.Accepted) -> None:
        super().on_accepted(accepted)
        # What the responder announces bounds what this side will hold: check it first.
        if not ecdh.MIN_TAG_BYTES <= accepted.tag_length <= ecdh.MAX_TAG_BYTES:
            raise ProtocolViolation(f"the responder announced tags of {accepted.tag_length} bytes")
        if self.cardinality and accepted.tag_length != ecdh.POINT_BYTES:
            raise ProtocolViolation("in cardinality mode the setup is points of 32 bytes")
        if accepted.setup_size > MAX_SETUP_ENTRIES:
            raise ProtocolViolation(f"the responder announced a setup of {accepted.setup_size} entries")
        self._index = ecdh_index.SetupIndex(accepted.tag_length)
        if accepted.setup_skipped:
            if self._cached is None or self._cached_id != accepted.setup_id:
                raise ProtocolViolation("the responder skipped a setup this requester does not hold")
            if self._cached.tag_length != accepted.tag_length or len(self._cached) != accepted.setup_size:
                raise ProtocolViolation("cached setup does not fit the responder's announcement")
            self._index = ecdh_index.SetupIndex.from_rows(self._cached)

    def on_setup(self, chunk: pb.SetupChunk) -> None:
        assert self._index is not None and self.accepted is not None
        if self._done:
            raise ProtocolViolation("setup after evaluated elements")
        if self.reveal != "cardinality" and len(chunk.labels) != len(chunk.tags):
            raise ProtocolViolation("setup chunk with tags and labels of different counts")
        if self.reveal == "cardinality" and chunk.labels:
            raise ProtocolViolation("setup chunk with labels in cardinality mode")
        if self.accepted.setup_skipped:
            raise ProtocolViolation("setup sent after the responder said it would skip it")
        tags, labels = list(chunk.tags), list(chunk.labels)
        if labels:
            first = self._label_length or len(labels[0])
            if first < ecdh.MIN_LABEL_BYTES or set(map(len, labels)) != {first}:
                raise ProtocolViolation("setup labels are not of one common, possible length")
            self._label_length = first
        self._index.add(tags, labels)
        if len(self._index) > self.accepted.setup_size:
            raise ProtocolViolation("more setup entries than announced")
        self._received = True
        if self._cache is not None and len(self._index) == self.accepted.setup_size and self._cache_save is None:
            # The whole setup is in: checked against its id and written on a thread while the
            # session goes on (result() waits for it). Started at the Summary, it was most of
            # a 1M match's serial tail (about 0.5 s of joining, hashing and writing 75 MB).
            # The index's per-chunk row buffers, hashed and written in order (not joined): a
            # snapshot of them, so a responder that sends more than it announced fails the
            # session (above) but cannot change what the thread saves. A session that fails
            # later may leave this cache behind: its content is what the responder announced
            # under this setup id, and it is used only for that id (it adds nothing the
            # responder could not send again).
            self._cache_save = _CacheSave(self._cache, self._responder, self.accepted, self._index.received_rows())

    def on_evaluated(self, chunk: pb.ElementChunk) -> int:
        """Check a reply chunk, start its unblinding on the kernel threads, and finish the chunk before it.

        The unblinding of chunk i runs while this thread looks up the hits of chunk i-1 and
        reads chunk i+1: the kernel threads are not idle during the Python work of a chunk
        (and the responder is not held back by a requester that stopped reading meanwhile).
        The last chunk is finished at once, so every reply is looked up before the tail,
        the Summary and the result. An invalid reply point is found when its chunk is
        finished, and named by its position in the session as before.
        """
        assert self._index is not None
        if self.cardinality:
            raise ProtocolViolation("the responder sent evaluated elements in cardinality mode (it counts itself)")
        order, elements = self.replies_in_order(self.request_size), list(chunk.elements)
        order.check(chunk.offset, len(elements))
        off = order.done
        self._check_distinct(elements)
        # The check elements among positions off..off+len: most chunks have none.
        lo, hi = bisect.bisect_left(self._canary_at, off), bisect.bisect_left(self._canary_at, off + len(elements))
        canaries = self._canary_at[lo:hi]
        if canaries:
            real = [(pos, e) for pos, e in enumerate(elements, off) if pos not in self._canaries]
            replies = [e for _, e in real]
        else:
            real, replies = [], elements
        # The whole chunk goes to the kernel, check elements too (their results are dropped when the
        # chunk is finished): a reply the kernel refuses is then named by its position in the session.
        kernel = ecdh.unblind if self.reveal == "both" else ecdh.unblind_outputs
        running = self._workers.submit_split(kernel, (self._inverse,), elements, offset=off)
        try:
            for pos in canaries:
                e = elements[pos - off]
                self._canary_out[pos] = ecdh.unblind_outputs(self._canaries[pos][2], [e], pos)[0]
        except InvalidElement as exc:
            raise ResponderMisbehaved(f"the responder's reply is not a valid point ({exc})") from None
        order.take(off, len(elements))
        self._unblinding.append((off, self._first_token(off), replies, real, running))
        last = order.done == self.request_size
        self._finish_chunks(keep=0 if last else 1)
        if last:
            self._check_canaries()
        return len(elements)

    def _finish_chunks(self, keep: int) -> None:
        """Finish the oldest reply chunks being unblinded until ``keep`` remain: their hits looked up and folded."""
        assert self._index is not None
        while len(self._unblinding) > keep:
            off, t0, replies, real, running = self._unblinding.popleft()
            try:
                unblinded = running.result()
            except InvalidElement as exc:
                raise ResponderMisbehaved(f"the responder's reply is not a valid point ({exc})") from None
            if real:  # the chunk's check elements are not replies to tokens
                unblinded = [u for pos, u in enumerate(unblinded, off) if pos not in self._canaries]
            if self.reveal == "both":  # the hits' points b·H(x) go back in the hit report
                points = unblinded
                outputs = ecdh.output_hashes(points)
            else:
                outputs = unblinded
            for t in self._bases:
                if t0 <= t < t0 + len(replies):
                    self._base_out[t] = outputs[t - t0]
            # The hits only (about one element in ten), their tokens read from the whole list: no
            # slice of this chunk's tokens (a slice touches every token object: 0.1 µs an element)
            hits = self._index.hits(outputs, self.tokens, off, first_token=t0)
            if hits:
                self.add_hits([(t0 + j, ref) for j, ref in hits])
                if self.reveal == "both":
                    for j, _ in hits:
                        pos = real[j][0] if real else off + j
                        self._hits.append((pos, points[j], replies[j]))
            if self._hit_refs and self._ahead is not None and not self.cardinality:
                self._fold_early()

    def _fold_early(self) -> None:
        """Fold a chunk's hits into (record, case reference) pairs now, not in result().

        result() runs after the last reply, on one core: folding 100k hits there was 0.4 s of
        a 1M match's serial tail. A hit on a token one record yields is found in
        :class:`BlindAhead`'s first-record map; a hit on a token several records yield waits
        for result(), whose one pass over the records finds them all.
        """
        assert self._ahead is not None
        hits, self._hit_refs = self._hit_refs, []
        repeated = self._ahead.repeated
        if repeated:
            tokens = self.tokens
            later = [h for h in hits if tokens[h[0]] in repeated]
            if later:
                self._hits_later.extend(later)
                hits = [h for h in hits if tokens[h[0]] not in repeated]
        self._fold(hits)

    def _check_distinct(self, elements: list[bytes]) -> None:
        """Distinct elements give distinct b·X: a repeated reply is the responder's doing."""
        fresh = set(elements)
        if len(fresh) == len(elements) and self._replies.isdisjoint(fresh):
            self._replies |= fresh  # the common case, one set operation per chunk
            return
        for j, e in enumerate(elements):  # a repeat: find the first one, to name it
            if e in self._replies:
                raise ResponderMisbehaved(
                    f"the responder's reply {self._done + j} repeats an earlier reply: distinct elements "
                    "cannot have the same evaluation"
                )
            self._replies.add(e)

    def _check_canaries(self) -> None:
        """Each check element must unblind to its base token's point (see the module docstring)."""
        for pos, (base, _, _) in self._canaries.items():
            if self._canary_out.get(pos) != self._base_out.get(base):
                raise ResponderMisbehaved(
                    "the responder's replies are not this session's evaluations of the elements sent "
                    "(a check element does not agree): replies replaced or replayed from another session"
                )

    @property
    def wants_tail(self) -> bool:
        return self.reveal in ("both", "cardinality")

    @property
    def tail_ready(self) -> bool:
        if self.accepted is None:
            return False
        if self.cardinality:
            return self._index is not None and len(self._index) == self.accepted.setup_size
        return self._done == self.request_size

    def tail(self, chunk_elements: int) -> list[pb.MatchRequest]:
        """both: the hit report with its proof; cardinality: every setup point re-blinded, a·b·H(y)."""
        assert self.accepted is not None and self._index is not None
        if self.cardinality:
            try:
                pool = self._pool if len(self._index) >= 2 * SMALL_BATCH else inline()
                points = pool.map_split(ecdh.evaluate, (self._key,), self._index.tags, offset=0)
            except InvalidElement as exc:
                raise ResponderMisbehaved(f"the responder's setup holds an invalid point ({exc})") from None
            points.sort()  # an order set by a: the responder cannot tell which point came from which entry
            return [
                pb.MatchRequest(reblinded=pb.ElementChunk(offset=i, elements=points[i : i + chunk_elements]))
                for i in range(0, len(points), chunk_elements)
            ]
        pairs = [(p, z) for _, p, z in self._hits]
        proof = ecdh_reveal.prove_hits(self._key, pairs, ecdh_reveal.hit_proof_context(self.accepted.session_id))
        return [pb.MatchRequest(hit_report=pb.HitReport(
            elements=[p for _, p, _ in self._hits], indices=[pos for pos, _, _ in self._hits], proof=proof,
        ))]

    def on_summary(self, summary: pb.Summary) -> None:
        if self.cardinality:
            total = self.accepted.setup_size if self.accepted else 0
            if summary.hit_count > min(len(self.tokens), total):
                raise ResponderMisbehaved(
                    f"the responder counted {summary.hit_count} hits for {len(self.tokens)} elements"
                )
            self.hit_tokens = summary.hit_count
        elif self._done != self.request_size:
            raise ProtocolViolation(f"session ended after {self._done} of {self.request_size} elements")
        if self.reveal == "both" and summary.hit_count != len(self._hits):
            raise ResponderMisbehaved(
                f"the responder confirmed {summary.hit_count} of the {len(self._hits)} reported hits"
            )


class _CacheSave:
    """Check a received setup against its announced id and size, and save it, on a thread of its own.

    Started as soon as the whole setup is in (the session goes on meanwhile);
    :meth:`wait`, called by ``result()``, joins it and raises what the save raised (a
    cache that cannot be written is an error of a session that succeeds, not a silent miss).
    The thread is not a daemon: an exiting interpreter waits for the file to be complete.
    """

    def __init__(self, cache, responder: str, accepted: pb.Accepted, setup: ecdh_index.ReceivedRows) -> None:
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(cache, responder, accepted, setup),
                                        name="setup-cache-save")
        self._thread.start()

    def _run(self, cache, responder: str, accepted: pb.Accepted, setup: ecdh_index.ReceivedRows) -> None:
        try:
            if len(setup) == accepted.setup_size:  # and the content's id is the announced one (checked by save)
                cache.save(responder, accepted.setup_id, setup)
        except BaseException as exc:  # handed to wait()
            self._error = exc

    def wait(self) -> None:
        self._thread.join()
        if self._error is not None:
            raise self._error

