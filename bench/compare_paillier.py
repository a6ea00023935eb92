"""Paillier PSI: this implementation end to end over loopback gRPC (mTLS) vs a straightforward one.

    python bench/compare_paillier.py --size 10000

Ours: two agencies' CSVs of ``--size`` records each (one name+dob token per record,
``--common`` of them shared), a responder started on 127.0.0.1 with mutual TLS, and
``run_match`` with ``protocol = "paillier"``: key generation, binning, encryption,
transfer, evaluation, decryption and hit detection, timed as one wall-clock figure.

Straightforward: the same protocol written with phe's high-level API (``encrypt``,
``EncryptedNumber`` ``*``/``+``, ``decrypt``), single process, no gRPC, run in the same
process on ``--baseline-size`` tokens per side and extrapolated linearly to ``--size``
(it is too slow to run at full size; the output says so).
"""

from __future__ import annotations

import argparse
import csv
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from phe import paillier as phe_paillier  # noqa: E402

from matcher.protocols import paillier as pl  # noqa: E402


def _write(path: Path, id_col: str, ids: list[int], prefix: str, case: bool) -> None:
    cols = [id_col, "first_name", "last_name", "dob", "case_id", "sex", "nationality", "doc_no", "doc_country",
            "gender", "citizenship", "passport", "passport_country"]
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        for i in ids:
            # distinct people: the name carries the number, spelled in letters
            name = "".join("abcdefghij"[int(c)] for c in str(i))
            dob = f"{1 + i % 28:02d}.{1 + i % 12:02d}.{1950 + i % 50}"
            w.writerow([f"{prefix}-{i}", "Person", "X" + name, dob, f"CASE-{i}" if case else ""] + [""] * 8)


ONE_KEY = '[match_keys]\nname_dob = ["name_tokens", "date_of_birth"]\n'  # one token per record


def _one_key(text: str) -> str:
    return text[: text.index("[match_keys]")] + ONE_KEY


def run_ours(size: int, common: int, key_bits: int, workers: int) -> tuple[float, int]:
    from matcher.demo import write_demo_files
    from matcher.config import load_requester_config, load_responder_config
    from matcher.requester import run_match
    from matcher.responder import start_responder

    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        resp_toml, req_toml = write_demo_files(d)
        _write(d / "agency_a_watchlist.csv", "id", list(range(size)), "A", True)
        _write(d / "agency_b_records.csv", "person_id", list(range(size - common, 2 * size - common)), "B", False)
        text = resp_toml.read_text()
        text = text.replace('protocols = ["ecdh"]', f'protocols = ["ecdh", "paillier"]\nworkers = {workers}')
        text = text.replace("max_request_size = ", "max_request_size = 100000000 #")
        text = text.replace("max_set_size = ", "max_set_size = 100000000 #")
        text = text.replace("daily_budget = ", "daily_budget = 1000000000 #")
        resp_toml.write_text(_one_key(text))
        text = req_toml.read_text()
        for old, new in [('given_names = "given"', 'given_names = "first_name"'),
                         ('family_name = "surname"', 'family_name = "last_name"'),
                         ('date_of_birth = "birth_date"', 'date_of_birth = "dob"'),
                         ('sex = "gender"', 'sex = "sex"'),
                         ('date_order = "MDY"', 'date_order = "DMY"'),
                         ('protocol = "ecdh"', f'protocol = "paillier"\npaillier_key_bits = {key_bits}\nworkers = {workers}')]:
            assert old in text, old
            text = text.replace(old, new, 1)
        req_toml.write_text(_one_key(text))
        running = start_responder(load_responder_config(resp_toml))
        try:
            t0 = time.perf_counter()
            run = run_match(load_requester_config(req_toml), d / "agency_b_records.csv",
                            f"127.0.0.1:{running.port}", out=d / "hits.csv")
            elapsed = time.perf_counter() - t0
        finally:
            running.stop(grace=0)
        return elapsed, len(run.result.hits)


def run_straightforward(size: int, common: int, key_bits: int) -> tuple[float, int]:
    """The same protocol with phe's EncryptedNumber API, one process, no transport."""
    t0 = time.perf_counter()
    pub, priv = phe_paillier.generate_paillier_keypair(n_length=key_bits)
    req = [pl.encode_token(f"t{i}".encode()) for i in range(size - common, 2 * size - common)]
    resp = [(pl.encode_token(f"t{i}".encode()), f"CASE-{i}".encode()) for i in range(size)]
    bins, degree = pl.choose_bins(len(req))
    seed = secrets.randbits(64)
    lists: list[list[int]] = [[] for _ in range(bins)]
    for e in req:
        lists[pl.bin_of(e, seed, bins)].append(e)
    degree = max(degree, max(len(x) for x in lists))
    enc_bins = []
    for roots in lists:
        roots = roots + [secrets.randbelow(pub.max_int) for _ in range(degree - len(roots))]
        # coefficients are arbitrary residues mod n, beyond encrypt()'s signed range: raw_encrypt
        enc_bins.append([phe_paillier.EncryptedNumber(pub, pub.raw_encrypt(int(a)))
                         for a in pl.poly_from_roots(roots, pub.n)])
    replies = []
    for e, ref in resp:
        coeffs = enc_bins[pl.bin_of(e, seed, bins)]
        acc = coeffs[-1] + e
        for c in reversed(coeffs[:-1]):
            acc = acc * e + c
        r = secrets.randbelow(pub.max_int - 1) + 1
        replies.append(acc * r + pub.encrypt(pl.encode_payload(e, ref, key_bits)))  # fresh randomness
    secrets.SystemRandom().shuffle(replies)
    mine = set(req)
    hits = 0
    for c in replies:
        decoded = pl.decode_payload(priv.raw_decrypt(c.ciphertext(be_secure=False)), key_bits)
        if decoded is not None and decoded[0] in mine:
            hits += 1
    return time.perf_counter() - t0, hits


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=10000, help="tokens per side (default 10000)")
    ap.add_argument("--common", type=int, help="shared tokens (default size/100, at least 1)")
    ap.add_argument("--key-bits", type=int, default=2048)
    ap.add_argument("--workers", type=int, default=0, help="process pool size (0 = all cores)")
    ap.add_argument("--baseline-size", type=int, default=100, help="set size the straightforward version runs on")
    args = ap.parse_args(argv)
    common = args.common if args.common is not None else max(1, args.size // 100)
    print(f"paillier {args.key_bits}-bit, {args.size} x {args.size} tokens, {common} shared; "
          f"{os.cpu_count()} cores, workers={args.workers or os.cpu_count()}", flush=True)
    ours, hits = run_ours(args.size, common, args.key_bits, args.workers)
    assert hits == common, (hits, common)
    print(f"ours, end to end over loopback gRPC (mTLS): {ours:.1f} s, {hits} hits", flush=True)
    bsize = min(args.size, args.baseline_size)
    bcommon = max(1, bsize // 100) if bsize < args.size else common
    base, bhits = run_straightforward(bsize, bcommon, args.key_bits)
    assert bhits == bcommon, (bhits, bcommon)
    if bsize < args.size:
        est = base * args.size / bsize
        print(f"straightforward (phe EncryptedNumber, 1 process, no gRPC): {base:.1f} s at {bsize} x {bsize}, "
              f"extrapolated linearly to {args.size} x {args.size}: {est:.0f} s")
    else:
        est = base
        print(f"straightforward (phe EncryptedNumber, 1 process, no gRPC): {base:.1f} s")
    print(f"speed-up: {est / ours:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
