"""The requester's handling of a received ecdh setup: CPU per phase and peak memory.

What :meth:`EcdhRequesterSession.on_setup` and the setup-cache thread do with a setup of
``--entries`` entries arriving as ``--chunks`` chunks (synthetic: random sorted tags of 16
bytes, labels of 59 bytes; one entry in ten a hit whose label really opens):

* add      ``SetupIndex.add`` of each chunk (the per-entry objects made just before, as the
           wire's parse makes them, and not counted);
* handover what the session hands the cache thread (the lists copied, or the chunks' rows);
* save     ``RequesterSetupCache.save``: the setup id checked and the file written (the
           thread's CPU: the join, the hash, the write);
* hits     ``SetupIndex.hits`` over the hit outputs (the first lookup joins the tags; each
           hit's label read and opened).

The cyclic GC paused, as in the requester's ecdh session. Thread CPU time
(``time.thread_time``), best of ``--repeat``; then, in a fresh process
given the same input, the peak RSS of one pass above its RSS before the first chunk
(the input is read there chunk by chunk, so its own peak stays
below; VmHWM, see :func:`_peak_mb`), and the RSS still held by the index after the save.
Runs against whichever ``matcher`` is importable (the code before this change kept the
setup as two lists; the session then copied them for the cache):

    python bench/setup_receive.py --entries 1000000 --chunks 72 --repeat 3
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import pickle
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from matcher.parallel import gc_paused
from matcher.protocols import ecdh, group_backend, label_backend
from matcher.protocols.ecdh_index import SetupIndex
from matcher.storage.setup_cache import RequesterSetupCache, setup_id

TAG, LABEL_PLAIN, NONCE = 16, 31, 12  # a label of 59 bytes: nonce ‖ 31-byte plaintext ‖ 16-byte tag


def _synthetic(entries: int, chunks: int, seed: int = 1):
    """Per chunk (tags blob, labels blob); the hit outputs and their tokens; the setup id."""
    rng = random.Random(seed)
    hits = entries // 10
    outputs = [rng.randbytes(64) for _ in range(hits)]
    tokens = [b"tok-%d" % i for i in range(hits)]
    rows = []
    for o, tok in zip(outputs, tokens, strict=True):
        ref = b"CASE-%d" % len(rows)
        plain = len(ref).to_bytes(2, "big") + ref + bytes(LABEL_PLAIN - 2 - len(ref))
        nonce = rng.randbytes(NONCE)
        rows.append(o[:TAG] + nonce + ChaCha20Poly1305(o[32:]).encrypt(nonce, plain, ecdh.label_ad(tok)))
    width = TAG + NONCE + LABEL_PLAIN + 16
    blob = rng.randbytes((entries - hits) * width)
    rows += [blob[i : i + width] for i in range(0, len(blob), width)]
    rows.sort()
    step = -(-entries // chunks)
    parts = []
    for lo in range(0, entries, step):
        chunk = rows[lo : lo + step]
        parts.append((b"".join(r[:TAG] for r in chunk), b"".join(r[TAG:] for r in chunk)))
    sid = setup_id(ecdh.ResponderSetup(TAG, [r[:TAG] for r in rows], [r[TAG:] for r in rows]))
    return parts, outputs, tokens, sid


def _run(parts, outputs, tokens, sid: str, folder: Path, memory: bool = False) -> dict:
    """One pass: the setup received, handed over, saved, looked up. CPU seconds per phase (RSS in MB)."""
    width = len(parts[0][1]) // (len(parts[0][0]) // TAG)
    gc.collect()
    base = _rss_mb()
    index, add = SetupIndex(TAG), 0.0
    for tag_blob, label_blob in parts:  # the per-entry objects, as the protobuf parse makes them
        tags = [tag_blob[i : i + TAG] for i in range(0, len(tag_blob), TAG)]
        labels = [label_blob[i : i + width] for i in range(0, len(label_blob), width)]
        t = time.thread_time()
        index.add(tags, labels)
        add += time.thread_time() - t
        del tags, labels
    t = time.thread_time()
    if hasattr(index, "received_rows"):
        setup = index.received_rows()
    else:  # before: the lists copied for the cache thread
        setup = ecdh.ResponderSetup(TAG, list(index.tags), list(index.labels))
    handover = time.thread_time() - t
    t = time.thread_time()
    assert RequesterSetupCache(folder).save("responder", sid, setup)
    save = time.thread_time() - t
    del setup
    t = time.thread_time()
    found = index.hits(outputs, tokens)
    hits = time.thread_time() - t
    assert len(found) == len(outputs) and found[0][1].startswith(b"CASE-")
    out = {"add": add, "handover": handover, "save": save, "hits": hits}
    if memory:
        gc.collect()
        out["peak_rss_mb"] = _peak_mb()
        out["peak_rss_above_start_mb"] = _peak_mb() - base
        out["held_after_mb"] = _rss_mb() - base
    return out


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def _peak_mb() -> float:
    """This process's peak RSS: VmHWM, not ``getrusage``'s ``ru_maxrss``, which in a process started by
    fork and exec also counts the parent's RSS at the fork (Linux keeps the larger of the two)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1e3  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3  # (no /proc: kB on Linux)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--chunks", type=int, default=72)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--memory-child", help=argparse.SUPPRESS)  # the pickled input of one pass in a fresh process
    args = ap.parse_args()
    if args.memory_child:  # the input read (no larger peak than it), then one pass: the peak RSS is that pass's
        with open(args.memory_child, "rb") as fh:
            data = pickle.load(fh)
        with tempfile.TemporaryDirectory() as tmp, gc_paused():
            print(json.dumps(_run(*data, Path(tmp), memory=True)))
        return
    data = _synthetic(args.entries, args.chunks)
    with tempfile.TemporaryDirectory() as tmp:
        with gc_paused():  # as in the requester's ecdh session (matcher/requester.py)
            runs = [_run(*data, Path(tmp) / "cache") for _ in range(args.repeat)]
        with open(Path(tmp) / "input.pickle", "wb") as fh:
            pickle.dump(data, fh, protocol=5)
        child = subprocess.run([sys.executable, __file__, "--memory-child", str(Path(tmp) / "input.pickle")],
                               check=True, capture_output=True, text=True)
    best = {k: min(r[k] for r in runs) for k in runs[0]}
    mem = json.loads(child.stdout.strip().splitlines()[-1])
    print(f"{args.entries} entries in {args.chunks} chunks; lookup backend "
          f"{'C' if group_backend.FAST is not None else 'bisect'}, label opener "
          f"{'C' if label_backend.OPEN is not None else 'python'}; thread CPU s, best of {args.repeat}")
    for k, v in best.items():
        print(f"  {k:9s} {v:.3f}")
    print(f"  total     {sum(best.values()):.3f}   (add + handover on the session's thread, save on its own)")
    print(f"  peak RSS above the start {mem['peak_rss_above_start_mb']:.0f} MB (peak {mem['peak_rss_mb']:.0f} MB), "
          f"held after the save {mem['held_after_mb']:.0f} MB (one pass in a fresh process)")


if __name__ == "__main__":
    main()
