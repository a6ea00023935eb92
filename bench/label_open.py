"""µs per label of the requester's label opening: C batch opener vs ``cryptography`` per label.

    python bench/label_open.py --labels 100000 --rounds 5

Labels sealed as the responder seals them (64-byte padded plaintext, the token-bound
associated data), opened both ways in the same process, rounds interleaved (A B B A …):

* **python**: :func:`matcher.protocols.ecdh._open_with` with ``label_ad`` per label, as
  ``SetupIndex.lookup_outputs`` did for each hit;
* **c**: one ``label_backend.OPEN.open_labels`` call per chunk of ``--chunk`` labels (the
  requester's reply chunks), the way ``lookup_outputs`` calls it now.

Then the same through ``SetupIndex.lookup_outputs`` (a setup of the ``--labels`` entries,
every output a hit, chunks of ``--chunk``), with ``label_backend.OPEN`` as loaded and set to
None: the per-hit cost of the lookup as the requester runs it, tag search included.

Prints the lowest CPU time (``time.process_time``) of the rounds per label and the ratio; the
results of both are compared so the figure is of a correct opening.
"""

from __future__ import annotations

import argparse
import os
import time

from matcher.protocols import ecdh, label_backend


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--labels", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--chunk", type=int, default=4096)
    args = parser.parse_args()
    if label_backend.OPEN is None:
        raise SystemExit(f"no C opener here: {label_backend.DETAIL}")
    n = args.labels
    outputs = [os.urandom(64) for _ in range(n)]
    tokens = [b"token-%d" % i for i in range(n)]
    labels = [ecdh._seal(o[32:], (8).to_bytes(2, "big") + b"CASE-%03d" % (i % 1000) + bytes(54), ecdh.label_ad(t))
              for i, (o, t) in enumerate(zip(outputs, tokens, strict=True))]

    def python() -> list[bytes | None]:
        return [ecdh._open_with(o[32:], label, ecdh.label_ad(t))
                for o, label, t in zip(outputs, labels, tokens, strict=True)]

    def c() -> list[bytes | None]:
        out: list[bytes | None] = []
        opener = label_backend.OPEN
        assert opener is not None
        for s in range(0, n, args.chunk):
            out += opener.open_labels(outputs[s:s + args.chunk], labels[s:s + args.chunk], tokens[s:s + args.chunk],
                                      ecdh.LABEL_AD_PREFIX)
        return out

    best = {"python": float("inf"), "c": float("inf")}
    results = {}
    for r in range(args.rounds):
        for name in (["python", "c"] if r % 2 == 0 else ["c", "python"]):
            t0 = time.process_time()
            results[name] = (python if name == "python" else c)()
            best[name] = min(best[name], time.process_time() - t0)
    assert results["python"] == results["c"] and None not in results["c"]
    py_us, c_us = (best[k] / n * 1e6 for k in ("python", "c"))
    print(f"{n} labels, chunks of {args.chunk}, best of {args.rounds} rounds (CPU time)")
    print(f"python (cryptography, per label): {py_us:6.2f} µs/label  ({best['python']:.3f} s)")
    print(f"c (OpenSSL, open_labels batch):   {c_us:6.2f} µs/label  ({best['c']:.3f} s)  {py_us / c_us:.1f}x faster")

    from matcher.protocols.ecdh_index import SetupIndex

    tag_len = 8
    rows = sorted(zip((o[:tag_len] for o in outputs), labels, strict=True))
    index = SetupIndex.from_setup(ecdh.ResponderSetup(tag_len, [t for t, _ in rows], [label for _, label in rows]))
    opener = label_backend.OPEN

    def lookup() -> list[bytes | None]:
        out: list[bytes | None] = []
        for s in range(0, n, args.chunk):
            out += index.lookup_outputs(outputs[s:s + args.chunk], tokens[s:s + args.chunk], s)
        return out

    best = {"python": float("inf"), "c": float("inf")}
    for r in range(args.rounds):
        for name in (["python", "c"] if r % 2 == 0 else ["c", "python"]):
            label_backend.OPEN = opener if name == "c" else None
            t0 = time.process_time()
            results[name] = lookup()
            best[name] = min(best[name], time.process_time() - t0)
    label_backend.OPEN = opener
    assert results["python"] == results["c"] and None not in results["c"]
    py_us, c_us = (best[k] / n * 1e6 for k in ("python", "c"))
    print(f"SetupIndex.lookup_outputs, every output a hit: python {py_us:.2f} µs/hit, c {c_us:.2f} µs/hit "
          f"({py_us / c_us:.1f}x)")


if __name__ == "__main__":
    main()
