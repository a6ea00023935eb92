"""The responder's state between sessions: its watchlist tokens, key epoch and setup, log and budgets.

One ResponderState serves every session of a running responder. The epoch key and
its setup are rotated when ``key_rotation_days`` have passed; the setup is kept on
disk per epoch (matcher.storage.setup_cache) so a restart within the epoch reuses it.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from matcher.config import ResponderConfig, ResponderSettings
from matcher.files import private_dir
from matcher.identity.conformance import require_conformant
from matcher.identity.match_keys import KeySpec
from matcher.identity.records import LoadResult, TokenisedRecord
from matcher.parallel import Workers, kernel_threads
from matcher.protocols import ecdh, label_backend
from matcher.server.budgets import BUDGET_FILE, BudgetLedger
from matcher.server.hits import append_responder_hits
from matcher.storage.secrets_store import EpochKey, load_or_rotate, read_key
from matcher.storage.session_log import KEY_FILE as SESSION_LOG_KEY
from matcher.storage.session_log import SessionLog
from matcher.storage.setup_cache import (
    SetupCacheTampered,
    entries_digest,
    load_setup,
    remove_other_setups,
    save_setup,
    setup_id,
)

log = logging.getLogger("matcher.server.responder")


@dataclass
class Epoch:
    """One key epoch: its key and the setup derived from the watchlist under it."""

    key: EpochKey
    setup: ecdh.ResponderSetup
    setup_id: str
    from_cache: bool = False


#: Fewest tokens in a batch that :class:`SetupAhead` sends to the worker processes.
SETUP_AHEAD_MIN = 4096


class SetupAhead:
    """The group operations of the first epoch's setup, started on the workers while the watchlist is read.

    A setup costs one hash-to-group and one scalar multiplication per token, under a key
    that is settled only once the whole watchlist is known (a changed watchlist starts a
    new epoch). :func:`setup_ahead` names the likely key beforehand; :meth:`feed`
    takes the records as the loader makes them and sends their tokens to the workers
    (:func:`matcher.protocols.ecdh.setup_outputs`), so loading and the group operations
    use both cores. If the key in force turns out to be another, or the setup comes from
    the cache, the work is dropped and nothing else changes.
    """

    def __init__(self, workers: Workers, key: bytes, new_epoch: bool) -> None:
        self._workers = workers
        self.key = key
        #: the key is a fresh one for the new epoch the start will begin (else: the current epoch's)
        self.new_epoch = new_epoch
        self._parts: list = []
        self._waiting: list[bytes] = []  # tokens not yet sent (the workers are busy)
        #: batches on the workers at once: all cores but the one that reads the watchlist
        self._in_flight = max(1, workers.size - 1)
        self.count = 0  # tokens sent

    def __repr__(self) -> str:  # never the key
        return f"SetupAhead(<{self.fed} tokens>)"

    @property
    def fed(self) -> int:
        """Tokens handed over so far (sent or waiting)."""
        return self.count + len(self._waiting)

    def feed(self, records: Sequence[TokenisedRecord]) -> None:
        """Start the group operations of these records' tokens (in order, as the entries list them).

        While the workers are busy the tokens wait, and go in one larger batch once one is
        free: the reading of the watchlist keeps a core to itself and stays the pace-setter.
        """
        self._waiting.extend(token for r in records for _key, token in r.tokens)
        busy = sum(1 for p in self._parts if not isinstance(p, bytes) and not p.done())
        if busy < self._in_flight and len(self._waiting) >= SETUP_AHEAD_MIN:
            self._send()

    def _send(self) -> None:
        tokens, self._waiting = self._waiting, []
        if len(tokens) >= SETUP_AHEAD_MIN:
            self._parts.append(self._workers.submit(ecdh.setup_outputs, self.key, tokens))
        elif tokens:  # a small rest (or a small watchlist): here, not worth a worker process
            self._parts.append(ecdh.setup_outputs(self.key, tokens))
        self.count += len(tokens)

    def flush(self) -> None:
        """The watchlist is read: send the waiting tokens now, split over every worker."""
        rest, self._waiting = self._waiting, []
        step = max(SETUP_AHEAD_MIN, -(-len(rest) // self._workers.size))
        for i in range(0, len(rest), step):
            self._waiting = rest[i : i + step]
            self._send()

    def outputs(self) -> bytes:
        """The 64-byte output hashes of every token fed, in order (waits for the workers)."""
        self.flush()
        parts, self._parts = self._parts, []
        return b"".join([p if isinstance(p, bytes) else p.result() for p in parts])

    def cancel(self) -> None:
        """Drop the work (not needed): what has not started is not run."""
        for p in self._parts:
            if not isinstance(p, bytes):
                p.cancel()
        self._parts, self._waiting = [], []


def setup_ahead(
    settings: ResponderSettings, epoch_dir: Path, workers: Workers, now: float | None = None
) -> SetupAhead | None:
    """A :class:`SetupAhead` under the key the first setup will most likely be computed with, or None
    when it is better not to guess.

    No key yet, or an expired one: a new epoch starts, with a key drawn now (handed to
    :func:`load_or_rotate`). A current key whose setup is not on disk (the cache was
    removed): that key. A current key with its setup on disk: None, the cache will most
    likely serve. reveal = "both" and "cardinality" keep the points themselves: None
    (their setup is computed as before).
    """
    if settings.reveal in ("both", "cardinality"):
        return None
    current = read_key(epoch_dir)
    if current is None or current.expired(settings.key_rotation_days, time.time() if now is None else now):
        return SetupAhead(workers, ecdh.new_key(), new_epoch=True)
    if (epoch_dir / f"setup-{current.epoch}.bin").exists():
        return None
    return SetupAhead(workers, current.key, new_epoch=False)


class ResponderState:
    """The watchlist's tokens and the current epoch, rotated when the configured time has passed."""

    def __init__(
        self, config: ResponderConfig, watchlist: LoadResult, progress=None, workers: Workers | None = None,
        epoch_dir: Path | None = None, shared: ResponderState | None = None, ahead: SetupAhead | None = None,
        release_records: bool = False,
    ) -> None:
        """``epoch_dir``: where the epoch key and its setup cache live (default ``state_dir``;
        ``serve --insecure`` gives a throw-away folder so the production epoch is never used).

        ``shared``: a reload's predecessor, still serving while this one is built; its worker
        pool, session log, budget ledger, hits-file lock and epoch folder are used, not opened
        a second time (one hash chain, one ledger), and closing is left to the last state.

        ``watchlist``'s summary goes to ``progress``; with ``release_records`` its records are
        taken (``watchlist.records`` is emptied once their tokens are read), so they are freed
        before the setup is computed.

        ``ahead``: the first setup's group operations, started while ``watchlist`` was
        loaded (:func:`setup_ahead`, fed every record of it); used if its key is the one in force.
        """
        self.config = config
        self.workers: Workers = (shared.workers if shared is not None else None) or workers or Workers(
            config.responder.workers, config.responder.dask_scheduler, config.responder.dask_tls)
        self.keyspec: KeySpec = config.key_spec()
        #: what this installation's normaliser produced for its conformance vectors (refused if broken)
        self.conformance = require_conformant(self.keyspec.norm_version)
        self.settings = config.responder
        private_dir(self.settings.state_dir)  # keys, setup, budgets, hits: the owner's only (0700)
        self.epoch_dir: Path = shared.epoch_dir if shared is not None else (epoch_dir or self.settings.state_dir)
        if ahead is not None:
            ahead.flush()  # the rest of the work ahead runs while the entries and their digest are made
        #: rows read, used and rejected (the records themselves are not kept)
        self.watchlist_summary = watchlist.summary()
        if progress:
            progress(self.watchlist_summary)
        self._entries = [
            (token, r.case_ref.encode("utf-8")) for r in watchlist.records for _key, token in r.tokens
        ]
        self._distinct_tokens: int | None = None
        #: reveal = "both": token -> (record_id, key name, case_ref) of the own records that yield it
        self.owners: dict[bytes, list[tuple[str, str, str]]] = {}
        if self.settings.reveal == "both":
            for r in watchlist.records:
                for key_name, token in r.tokens:
                    self.owners.setdefault(token, []).append((r.record_id, key_name, r.case_ref))
        if release_records:  # not needed from here on: freed before the setup is built (half the peak memory)
            watchlist.records = []
        self._tag_len = ecdh.tag_length(len(self._entries), self.settings.max_request_size)
        if self.settings.reveal == "cardinality":  # the setup is the points b·H(y) themselves (the responder counts)
            self._tag_len = ecdh.POINT_BYTES
        #: what the key epoch is bound to: the watchlist's tokens and case references, key spec,
        #: reveal mode and tag length (a change to any of them starts a new epoch)
        self._watchlist_digest = entries_digest(
            self._entries, self.keyspec.fingerprint(), self.settings.reveal, str(self._tag_len)
        )
        self.hits_lock: threading.Lock = shared.hits_lock if shared is not None else threading.Lock()
        self._keyed_hash_index = None
        self._progress = progress
        self._lock = threading.Lock()
        self._rotate_lock = threading.Lock()  # one rotation at a time
        self._rotating = False
        self._epoch: Epoch | None = None
        self._ahead = ahead
        #: which configuration sessions run under (in every session-log row)
        self.config_fingerprint = config.fingerprint()
        if shared is not None:
            self.session_log: SessionLog | None = shared.session_log
            self.budgets: BudgetLedger = shared.budgets
        else:
            self.session_log = (
                SessionLog(self.settings.session_log, self.settings.session_log_retention_days,
                           key_path=self.settings.state_dir / SESSION_LOG_KEY)
                if self.settings.session_log
                else None
            )
            self.budgets = BudgetLedger(self.settings.state_dir / BUDGET_FILE)
        self.current()

    @property
    def hits_file(self) -> Path:
        """reveal = "both": the CSV where the responder's own hits are appended (mode 0600)."""
        return self.settings.hits_file or self.settings.state_dir / "responder_hits.csv"

    def record_hits(self, session_id: str, peer: str, tokens: Sequence[bytes]) -> int:
        """reveal = "both": append the own records behind ``tokens`` to :attr:`hits_file`; distinct records hit."""
        return append_responder_hits(self.hits_file, self.hits_lock, self.owners, session_id, peer, tokens)

    def keyed_hash_index(self):
        """The own tags for protocol keyed-hash (built once, on first use), or None when it is not enabled."""
        if "keyed-hash" not in self.settings.protocols:
            return None
        with self._lock:
            if self._keyed_hash_index is None:
                from matcher.protocols import keyed_hash
                from matcher.storage.secrets_store import load_shared_secret

                secret = load_shared_secret(self.config.keyed_hash)
                self._keyed_hash_index = keyed_hash.responder_index(secret, self._entries)
            return self._keyed_hash_index

    def close(self) -> None:
        """Release the session log and the worker pool (called at shutdown)."""
        if self.session_log is not None:
            self.session_log.close()
        self.workers.close()

    @property
    def distinct_tokens(self) -> int:
        """Distinct watchlist tokens: what a paillier session makes the responder evaluate (counted at
        first use, not at start-up)."""
        if self._distinct_tokens is None:
            self._distinct_tokens = len({token for token, _ in self._entries})
        return self._distinct_tokens

    @property
    def entries(self) -> list[tuple[bytes, bytes]]:
        """(token, case reference) of every watchlist record's tokens (protocols without a setup)."""
        return self._entries

    @property
    def in_force(self) -> Epoch | None:
        """The epoch serving now, without starting a rotation (for monitoring; None before the first)."""
        with self._lock:
            return self._epoch

    def current(self) -> Epoch:
        """The epoch in force now, starting a new one (new key, new setup) when due.

        The new setup is computed outside the lock sessions take: while it is being
        built (hours for a very large watchlist) the expiring epoch goes on serving, so
        a rotation never stalls policy requests or sessions. Only the very first epoch
        is waited for.
        """
        with self._lock:
            epoch = self._epoch
            if epoch is not None and (self._rotating or not self._due(epoch)):
                return epoch
            self._rotating = True
        try:
            with self._rotate_lock:
                with self._lock:  # a waiter at start-up: the first thread may have finished
                    if self._epoch is not None and not self._due(self._epoch):
                        return self._epoch
                ahead = self._ahead
                key, fresh = load_or_rotate(
                    self.epoch_dir, self.settings.key_rotation_days, watchlist_digest=self._watchlist_digest,
                    next_key=ahead.key if ahead is not None and ahead.new_epoch else None,
                )
                new = self._setup_for(key)
                log.info(
                    "key epoch %s in force (%s key, %s setup of %d entries)", new.key.epoch,
                    "new" if fresh else "loaded", "cached" if new.from_cache else "new", len(new.setup),
                )
                with self._lock:
                    self._epoch = new
                return new
        finally:
            with self._lock:
                self._rotating = False

    def _due(self, epoch: Epoch) -> bool:
        return epoch.key.expired(self.settings.key_rotation_days, time.time())

    def _setup_progress(self):
        """Report the setup's progress every 10%."""
        shown = [0]

        def report(done: int, total: int) -> None:
            tenth = 10 * done // max(1, total)
            if tenth > shown[0]:
                shown[0] = tenth
                self._progress(f"setup {done}/{total} entries ({10 * tenth}%)")

        return report

    def _setup_for(self, key: EpochKey) -> Epoch:
        """The epoch's setup from the state folder's cache if it is authentic and fits the watchlist, else computed.

        The key epoch is bound to the watchlist (load_or_rotate), so a changed watchlist
        already has a new key here. The cache is authenticated under a key derived from
        the epoch key: a cache that fails the check is logged (also in the session log)
        and rebuilt, never served.
        """
        ahead, self._ahead = self._ahead, None  # the work started while loading serves the first epoch only
        if ahead is not None and not (hmac.compare_digest(ahead.key, key.key) and ahead.fed == len(self._entries)):
            ahead.cancel()  # computed under another key (or not for every entry): dropped
            ahead = None
        with_labels = self.settings.reveal in ("requester", "both")
        # reveal = "both" keeps b·H(y) -> y in memory to check hit reports; those points
        # are never written to disk, so that mode always computes its setup.
        keep_points = self.settings.reveal == "both"
        # the watchlist digest already covers every entry: hashing them again cost a tenth of a setup
        digest = entries_digest((), key.epoch, self._watchlist_digest)
        path = self.epoch_dir / f"setup-{key.epoch}.bin"
        mac_key = key.subkey("setup-cache")
        try:
            cached = load_setup(path, mac_key=mac_key)
        except SetupCacheTampered:
            cached = None
            log.warning("the cached setup %s fails its authentication check (edited or damaged): rebuilding it",
                        path.name)
            if self.session_log is not None:
                self.session_log.append(event="integrity", role="responder", outcome="REBUILT",
                                        detail=f"cached setup {path.name} failed its authentication check; rebuilt",
                                        config_fingerprint=self.config_fingerprint)
        if cached is not None and cached[0].get("digest") == digest and not keep_points:
            if ahead is not None:
                ahead.cancel()
            setup = cached[1]
            return Epoch(key, setup, setup_id(setup), from_cache=True)
        if self._progress:
            self._progress(f"computing setup for {len(self._entries)} watchlist tokens (epoch {key.epoch})")
        # labels sealed in C without the GIL: on threads of this process (no copy of the
        # entries to the worker processes and of the rows back); with the IFMA kernels (also
        # GIL-free) the group operations of a setup not started while loading run there too,
        # so no worker process has to be spawned for them
        threads = label_backend.ROWS and (ahead is not None or ecdh.KERNELS_RELEASE_GIL)
        pool = kernel_threads(self.workers) if threads else self.workers
        setup = ecdh.responder_setup(
            key.key, self._entries, self._tag_len, with_labels=with_labels, workers=pool,
            keep_points=keep_points, progress=self._setup_progress() if self._progress else None,
            points_only=self.settings.reveal == "cardinality",
            outputs=ahead.outputs if ahead is not None else None,  # waited for once the entries are merged
        )
        sid = save_setup(path, setup, {"digest": digest, "epoch": key.epoch}, mac_key=mac_key)
        remove_other_setups(self.epoch_dir, path, "setup-*.bin")
        return Epoch(key, setup, sid)
