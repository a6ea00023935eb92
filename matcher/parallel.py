"""Where the pure batch kernels run: in this process, a local process pool, or a Dask cluster.

The matching core is a set of pure functions over batches (matcher.protocols);
this module only decides where a batch is computed. Results are always returned
in submission order, so every backend gives byte-identical output.

Process pools use the ``spawn`` start method: the service runs gRPC threads, and
forking a threaded process is unsafe.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any

#: Elements per batch sent to a worker: large enough that IPC is <1% of the work.
DEFAULT_BATCH = 1024
#: Below this many elements a batch is computed in the calling process: a pool round trip would cost more.
SMALL_BATCH = 512


def default_processes() -> int:
    """All cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _is_loopback_host(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def dask_address_problem(address: str, tls: object | None) -> str | None:
    """Why a Dask scheduler address may not carry matcher's tasks, or None when it may.

    The tasks carry the epoch key and session keys. A scheduler on loopback (or in this
    process, ``inproc://``) is fine with any transport; any other address must be
    ``tls://`` and come with certificates (``dask_tls``: ca, cert, key), because Dask's
    ``tcp://`` is plaintext.
    """
    from urllib.parse import urlsplit

    scheme, _, rest = address.partition("://")
    if not rest:
        scheme, rest = "tcp", address  # Dask's default transport
    scheme = scheme.lower()
    if scheme == "inproc":
        return None
    try:
        host = urlsplit(f"//{rest}").hostname or ""
    except ValueError:
        host = ""
    if _is_loopback_host(host):
        return None
    if scheme != "tls":
        return (f"the Dask scheduler {address} is not on loopback and not tls://: its tasks carry the epoch key and "
                "session keys, which would cross the network in plaintext")
    if tls is None:
        return (f"the Dask scheduler {address} is tls:// but no certificates are configured (dask_tls: ca, cert, "
                "key): the client would not authenticate the cluster")
    return None


class Workers:
    """A pool of workers for batch kernels.

    ``processes=1`` runs everything inline (no pool); ``processes=0`` means all
    cores. ``dask_scheduler`` (e.g. ``"tls://scheduler:8786"``) sends the same
    kernels to a Dask distributed cluster instead (``pip install matcher[dask]``);
    any address but loopback must be ``tls://`` with ``dask_tls`` certificates
    (see :func:`dask_address_problem`).
    """

    def __init__(self, processes: int = 0, dask_scheduler: str | None = None, dask_tls: Any = None) -> None:
        self.dask_scheduler = dask_scheduler
        self._dask = None
        self._pool: Executor | None = None
        self._lock = threading.Lock()
        self._closed = False
        if dask_scheduler:
            from matcher.errors import ConfigError

            if isinstance(dask_scheduler, str):
                problem = dask_address_problem(dask_scheduler, dask_tls)
                if problem:
                    raise ConfigError(problem + "; use a tls:// scheduler address and set dask_tls (ca, cert, key), "
                                      "see docs/operations.md")
            try:
                from distributed import Client
            except ImportError:
                raise ConfigError(
                    "the Dask backend needs the 'dask' extra: pip install 'matcher[dask]'"
                ) from None
            if isinstance(dask_scheduler, str) and dask_tls is not None:
                from distributed.security import Security

                security = Security(tls_ca_file=str(dask_tls.ca), tls_client_cert=str(dask_tls.cert),
                                    tls_client_key=str(dask_tls.key), require_encryption=True)
                self._dask = Client(dask_scheduler, security=security)
            else:
                self._dask = Client(dask_scheduler)
            self.size = max(1, sum(self._dask.nthreads().values()))
        else:
            self.size = processes or default_processes()

    def _executor(self) -> Executor | None:
        """The local pool, started on first use: a process that never submits never spawns one."""
        if self._pool is None and self.size > 1 and self._dask is None:
            with self._lock:
                if self._pool is None and not self._closed:
                    self._pool = self._new_pool()
        return self._pool

    def _new_pool(self) -> Executor:
        return ProcessPoolExecutor(self.size, mp_context=multiprocessing.get_context("spawn"))

    @property
    def is_local(self) -> bool:
        """Whether batches run on this machine (inline or a local pool), not on a Dask cluster."""
        return self._dask is None

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._closed = True
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self._dask is not None:
            self._dask.close()
            self._dask = None

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run ``fn(*args)`` on a worker; returns an object with ``.result()``."""
        if self._dask is not None:
            return self._dask.submit(fn, *args, pure=False)
        pool = self._executor()
        if pool is not None:
            return pool.submit(fn, *args)
        fut: Future = Future()
        try:
            fut.set_result(fn(*args))
        except BaseException as exc:  # re-raised by .result(), as a pool would
            fut.set_exception(exc)
        return fut

    def map_ordered(
        self, fn: Callable[..., Any], arg_batches: Iterable[tuple[Any, ...]], ahead: int | None = None
    ) -> Iterator[Any]:
        """``fn(*args)`` for each tuple, in order, with at most ``ahead`` batches in flight."""
        ahead = ahead or 2 * self.size
        pending: deque = deque()
        for args in arg_batches:
            pending.append(self.submit(fn, *args))
            if len(pending) >= ahead:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()

    def submit_split(
        self, fn: Callable[..., list], head: tuple, items: list, offset: int | None = None, batch: int = DEFAULT_BATCH
    ) -> SplitResult:
        """:meth:`map_split` without waiting: every slice is handed to the workers now.

        For one chunk's items (a few slices): the caller goes on, e.g. with the previous
        chunk's results, while the workers run these; ``.result()`` then waits and returns
        the slices' results concatenated in order, raising the first failed slice's error.
        Small inputs and a one-worker pool run inline at once, as in map_split (their error,
        too, is raised by ``.result()``).
        """
        def call_args(i: int, part: list) -> tuple:
            return (*head, part) if offset is None else (*head, part, offset + i)

        if self.size == 1 or len(items) < SMALL_BATCH:
            done: Future = Future()
            try:
                done.set_result(fn(*call_args(0, items)))
            except BaseException as exc:  # re-raised by .result(), as from a worker
                done.set_exception(exc)
            return SplitResult([done])
        step = max(batch // 4, min(batch, -(-len(items) // self.size)))
        return SplitResult([self.submit(fn, *call_args(i, items[i : i + step])) for i in range(0, len(items), step)])

    def map_split(
        self, fn: Callable[..., list], head: tuple, items: list, offset: int | None = None, batch: int = DEFAULT_BATCH
    ) -> list:
        """``fn(*head, items[i:j])`` over slices of ``items``, concatenated in order.

        With ``offset``, each call also gets the index of its slice's first item in
        the whole stream (``offset + i``), so errors can name the element.
        """
        def call_args(i: int, part: list) -> tuple:
            return (*head, part) if offset is None else (*head, part, offset + i)

        if self.size == 1 or len(items) < SMALL_BATCH:
            return fn(*call_args(0, items))
        step = max(batch // 4, min(batch, -(-len(items) // self.size)))
        out: list = []
        slices = (call_args(i, items[i : i + step]) for i in range(0, len(items), step))
        for part in self.map_ordered(fn, slices):
            out.extend(part)
        return out


class SplitResult:
    """The slices of one :meth:`Workers.submit_split` call, running; :meth:`result` joins them in order."""

    def __init__(self, parts: list) -> None:
        self._parts = parts

    def result(self) -> list:
        """The slices' results concatenated in order (waits for them; raises the first failed slice's error)."""
        out: list = []
        for part in self._parts:
            out.extend(part.result())
        return out


_INLINE: Workers | None = None


def inline() -> Workers:
    """The shared single-process backend."""
    global _INLINE
    if _INLINE is None:
        _INLINE = Workers(processes=1)
    return _INLINE


class ThreadWorkers(Workers):
    """Threads of this process instead of worker processes, for kernels that release the GIL.

    The IFMA batch kernels of :mod:`matcher.protocols.group_backend` run without the
    GIL, so threads run them in parallel with no copy of inputs and results to another
    process (pickling a chunk each way cost more than a tenth of a session's CPU).
    """

    def __init__(self, threads: int) -> None:
        super().__init__(processes=max(1, threads))

    def _new_pool(self) -> Executor:
        return ThreadPoolExecutor(self.size, thread_name_prefix="matcher-kernel")


#: ``processes`` keeps GIL-free kernels on the worker processes (for comparison runs)
KERNEL_POOL_ENV = "MATCHER_KERNEL_POOL"
_THREADS: dict[int, ThreadWorkers] = {}
_THREADS_LOCK = threading.Lock()


def kernel_threads(like: Workers) -> Workers:
    """Where GIL-free kernels run best for ``like``: a shared thread pool of its size, or ``like``.

    A Dask cluster (``like`` not local) stays as it is; a local process pool is
    replaced by threads of this process, one per process it would have used, unless
    ``MATCHER_KERNEL_POOL=processes`` is set (read at each session, for comparisons).
    """
    if not like.is_local or like.size == 1 or os.environ.get(KERNEL_POOL_ENV, "").strip().lower() == "processes":
        return like
    with _THREADS_LOCK:
        pool = _THREADS.get(like.size)
        if pool is None:
            pool = _THREADS[like.size] = ThreadWorkers(like.size)
        return pool


class _BesideCaller(ThreadWorkers):
    """Kernel threads that run even when there is one of them (a Workers of size 1 runs inline)."""

    def _executor(self) -> Executor | None:
        if self._pool is None:
            with self._lock:
                if self._pool is None and not self._closed:
                    self._pool = self._new_pool()
        return self._pool


_BESIDE: dict[int, ThreadWorkers] = {}


def kernel_threads_beside_caller(like: Workers) -> Workers:
    """Kernel threads that leave one core to the calling thread: ``like.size - 1`` of them (at least one).

    For GIL-free kernels started while the caller keeps a core busy with Python (e.g.
    blinding tokens while the records are still being parsed): a thread per core
    would take turns with the caller on its core and slow it down.
    """
    pool = kernel_threads(like)
    if not isinstance(pool, ThreadWorkers):
        return pool
    with _THREADS_LOCK:
        beside = _BESIDE.get(pool.size)
        if beside is None:
            beside = _BESIDE[pool.size] = _BesideCaller(max(1, pool.size - 1))
        return beside


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic garbage collector off inside the block (back on after it if it was on).

    For work that makes millions of objects with no cycles among them (a records file's
    load, a session's setup index and reply sets): the collector's passes over them find
    nothing to free and cost seconds at 1M records.
    """
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            gc.enable()


#: GIL switch interval while a Python loop runs beside helper threads (seconds; CPython's default is 0.005)
SHORT_SWITCH_INTERVAL = 0.001


@contextlib.contextmanager
def short_gil_switch(interval: float = SHORT_SWITCH_INTERVAL) -> Iterator[None]:
    """A shorter GIL switch interval inside the block, restored after.

    While one thread runs Python without pause (parsing a records file), a helper thread
    that needs the GIL only briefly — a kernel thread handing a batch over, or a process
    pool's threads moving a batch through a pipe in 64 KB pieces, one GIL hand-over each —
    waits up to the switch interval at every hand-over. With the default 5 ms the worker
    process of the responder's start sat idle for most of a 1M-record load (3 batches
    sent in 8 s); with 1 ms it kept pace (start 17.0 -> 13.8 s in one run each).
    """
    before = sys.getswitchinterval()
    sys.setswitchinterval(min(before, interval))
    try:
        yield
    finally:
        sys.setswitchinterval(before)

