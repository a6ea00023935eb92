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

Floor: the arithmetic the protocol cannot avoid at this size, timed in the same run on a
sample with the same key size and divided by the cores used (:func:`measure_floor`).
Printed as ``ours / floor`` and ``30 s target / floor`` (issue #15).
``--floor-only`` measures the floor alone (seconds instead of minutes).
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import secrets
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import gmpy2  # noqa: E402
from phe import paillier as phe_paillier  # noqa: E402

from matcher.parallel import default_processes  # noqa: E402
from matcher.protocols import modexp_backend  # noqa: E402
from matcher.protocols import paillier as pl  # noqa: E402
from matcher.protocols import paillier_responder as plr  # noqa: E402

TARGET_S = 30.0  # issue #15: 10k x 10k, 2048-bit key, end to end on the 2-core machine


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


def _cpu_now() -> float:
    """CPU-seconds of this process and of its children that have ended (the worker pools)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def run_ours(size: int, common: int, key_bits: int, workers: int) -> tuple[float, int, float]:
    """(wall seconds, hits, CPU-seconds of both agencies' processes and workers) for one run."""
    from matcher.config import load_requester_config, load_responder_config
    from matcher.demo import write_demo_files
    from matcher.requester import run_match
    from matcher.server.responder import start_responder

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
                         ('protocol = "ecdh"',
                          f'protocol = "paillier"\npaillier_key_bits = {key_bits}\nworkers = {workers}')]:
            assert old in text, old
            text = text.replace(old, new, 1)
        req_toml.write_text(_one_key(text))
        cpu0 = _cpu_now()
        running = start_responder(load_responder_config(resp_toml))
        try:
            t0 = time.perf_counter()
            run = run_match(load_requester_config(req_toml), d / "agency_b_records.csv",
                            f"127.0.0.1:{running.port}", out=d / "hits.csv")
            elapsed = time.perf_counter() - t0
        finally:
            running.stop(grace=0)
        return elapsed, len(run.result.hits), _cpu_now() - cpu0


def run_straightforward(size: int, common: int, key_bits: int) -> tuple[float, int]:
    """The same protocol with phe's EncryptedNumber API, one process, no transport."""
    t0 = time.perf_counter()
    pub, priv = phe_paillier.generate_paillier_keypair(n_length=key_bits)
    req = [pl.encode_token(f"t{i}".encode()) for i in range(size - common, 2 * size - common)]
    resp = [(pl.encode_token(f"t{i}".encode()), f"CASE-{i}".encode()) for i in range(size)]
    bins, degree = pl.choose_bins(len(req), step=pl.step_cost(key_bits))
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


@dataclass(frozen=True)
class FloorPart:
    """One kind of operation: measured seconds per operation, times how many the run needs."""

    name: str
    per_op_s: float
    count: int
    per_op_busy_s: float = 0.0  # the same operations timed by this process's CPU clock

    @property
    def cpu_s(self) -> float:
        return self.per_op_s * self.count

    @property
    def busy_s(self) -> float:
        return self.per_op_busy_s * self.count


@dataclass(frozen=True)
class Floor:
    bins: int
    degree: int
    cores: int
    parts: tuple[FloorPart, ...]
    choices: int = 1

    @property
    def cpu_s(self) -> float:
        return sum(p.cpu_s for p in self.parts)

    @property
    def wall_s(self) -> float:
        """The CPU-seconds spread perfectly over ``cores``: no wall clock can be lower."""
        return self.cpu_s / self.cores

    @property
    def busy_s(self) -> float:
        """The floor by the CPU clock: what the arithmetic costs when the run is not descheduled
        by other load (compare with ours' CPU-seconds, the load-robust ratio)."""
        return sum(p.busy_s for p in self.parts)


def cores_used(workers: int) -> int:
    """Cores the run can keep busy: ``workers`` (0 = all), never more than this process may use."""
    avail = default_processes()
    return min(workers, avail) if workers > 0 else avail


def _timed(fn: Callable[..., object], args: Sequence[tuple]) -> tuple[float, float]:
    """Seconds per call of ``fn(*a)`` over ``args``: wall clock (one core, like "ours") and CPU clock."""
    t0, c0 = time.perf_counter(), time.process_time()
    for a in args:
        fn(*a)
    return (time.perf_counter() - t0) / len(args), (time.process_time() - c0) / len(args)


def _timed_batched(powmod, triples: Sequence[tuple], modulus, exp_bits: int) -> tuple[float, float]:
    """Seconds per lane of ``powmod(bases, exps, modulus, exp_bits)`` over batches of eight (wall, CPU)."""
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(0, len(triples), 8):
        part = triples[i : i + 8]
        powmod([b for b, _, _ in part], [e for _, e, _ in part], modulus, exp_bits)
    return (time.perf_counter() - t0) / len(triples), (time.process_time() - c0) / len(triples)


def measure_floor(size: int, key_bits: int, samples: int = 200, *, cores: int | None = None,
                  key: pl.RequesterSecret | None = None) -> Floor:
    """Lower bound on the wall clock of ``size`` x ``size`` paillier on ``cores`` cores.

    For the binning the requester picks (``choose_params(size, costs=costs_for(bits))``:
    ``choices`` candidate bins per token, ``bins``, ``degree``), times on ``samples``
    operations of each kind, with a real key of ``key_bits`` (or ``key``):

    * per reply (``choices`` per responder token): the mask ``c^r mod n²`` with ``r`` uniform in Z_n and
      ``degree − 1`` Horner steps ``acc^e mod n²`` with a 128-bit ``e`` (the monic top
      coefficient enters as ``g^e``, one multiplication: not counted), each timed with
      the primitive the protocol uses here: the compiled eight-lane kernels (or
      libcrypto_mb's ``mbx_exp``) per lane of full batches of eight where AVX-512 IFMA runs
      them (:mod:`matcher.protocols.modexp_backend`), else one ``gmpy2.powmod``; and the
      reply's re-randomiser (fixed-base tables, the cheapest we have: a product of table
      entries instead of an exponentiation; in the kernels eight values a pass);
    * per bin: its polynomial from the roots (``poly_from_roots``);
    * per coefficient (``bins · degree``): one encryption, ``_RequesterCtx.encrypt_many``
      (CRT and fixed-base products: the compiled kernels eight a pass, else gmpy2's tables);
    * per reply: one decryption, ``_RequesterCtx.decrypt_many_mod_p``
      in batches of eight (multi-buffer where available).

    Sums count x seconds-per-operation to CPU-seconds and divides by ``cores`` (default
    :func:`cores_used` of all cores), i.e. assumes perfect parallelism. Left out, so the
    floor stays below any real run: key generation and its modulus proof (and the
    responder's check of it), the re-randomiser's bases, the multiplications mod n² in
    each Horner step, the payload term, ciphertext checks, binning, hashing tokens,
    serialisation, gRPC and TLS, inter-process copies, Python's loop overhead around the
    kernels, and any idle core. Timing is wall clock on one core, the same clock as the
    end-to-end figure.
    """
    key = key or pl.generate_key(key_bits, _allow_small=key_bits < pl.MIN_KEY_BITS)
    params = pl.choose_params(size, costs=pl.costs_for(key.bits))
    bins, degree, replies = params.bins, params.degree, params.choices * size
    ctx = pl._RequesterCtx(key)
    n2 = ctx.n2
    cts = [ctx.encrypt(secrets.randbelow(key.n)) for _ in range(samples)]
    masks = [(c, gmpy2.mpz(secrets.randbelow(key.n - 1) + 1), n2) for c in cts]
    steps = [(c, gmpy2.mpz(secrets.randbits(pl.ENCODING_BITS)), n2) for c in cts]
    coeffs = [(secrets.randbelow(key.n),) for _ in range(samples)]
    fast = modexp_backend.get()
    kind = "kernels" if isinstance(fast, modexp_backend.Kernels8) else "mbx_exp"
    if fast is not None and fast.size_for(n2):
        # the multi-buffer exponentiation the protocol uses here: per lane of full batches of 8
        how = f"{kind}, 8 lanes"
        mask_s = _timed_batched(fast.powmod, masks, n2, key.n.bit_length())
        step_s = _timed_batched(fast.powmod, steps, n2, pl.ENCODING_BITS)
    else:
        how = "gmpy2"
        mask_s, step_s = _timed(gmpy2.powmod, masks), _timed(gmpy2.powmod, steps)
    groups = [(cts[i : i + 8],) for i in range(0, len(cts), 8)]
    dec_s = tuple(t * len(groups) / len(cts) for t in _timed(ctx.decrypt_many_mod_p, groups))
    dec_how = f"{kind}, 8 lanes" if fast is not None and fast.size_for(ctx.p2) else "gmpy2"
    rctx = plr._ResponderCtx(plr.Rerandomiser.new(key.n))
    # as the session does: all of a batch's values at once (eight lanes a pass in the kernels)
    rerand_how = "kernels, fixed-base products" if rctx.products is not None else "fixed base"
    rerand_s = tuple(t / len(cts) for t in _timed(rctx.rerandomised, [(cts,)]))
    dummy = pl._DUMMY_LOW + secrets.randbelow(pl._DUMMY_SPAN)
    polys = [([secrets.randbits(pl.ENCODING_BITS)] * (degree // 2) + [dummy] * (degree - degree // 2), key.n)
             for _ in range(max(1, samples // 10))]
    poly_s = _timed(pl.poly_from_roots, polys)
    # as the session does: a task's coefficients at once (eight a pass in the compiled kernels)
    enc_s = tuple(t / len(coeffs) for t in _timed(ctx.encrypt_many, [([c for c, in coeffs],)]))
    enc_how = "kernels, fixed-base products" if ctx.kernel_halves is not None else "fixed base"
    parts = (
        FloorPart(f"responder mask c^r, r in Z_n ({how})", mask_s[0], replies, mask_s[1]),
        FloorPart(f"responder Horner steps, 128-bit exp. ({how})", step_s[0], replies * (degree - 1), step_s[1]),
        FloorPart(f"responder re-randomisers ({rerand_how})", rerand_s[0], replies, rerand_s[1]),
        FloorPart("requester polynomials from roots", poly_s[0], bins, poly_s[1]),
        FloorPart(f"requester encryptions (CRT, {enc_how})", enc_s[0], bins * degree, enc_s[1]),
        FloorPart(f"requester decryptions (mod p, {dec_how})", dec_s[0], replies, dec_s[1]),
    )
    return Floor(bins, degree, cores if cores is not None else cores_used(0), parts, params.choices)


def print_floor(floor: Floor, size: int) -> None:
    print(f"floor: the unavoidable arithmetic for {size} x {size} ({floor.bins} bins of degree {floor.degree}, "
          f"{floor.choices} candidate bin(s) per token), timed on samples in this run:", flush=True)
    for p in floor.parts:
        print(f"  {p.name:60s} {p.count:>8d} x {p.per_op_s * 1e3:7.3f} ms = {p.cpu_s:6.1f} CPU-s")
    print(f"  total {floor.cpu_s:.1f} CPU-s / {floor.cores} cores = floor {floor.wall_s:.1f} s "
          f"(perfect parallelism, no transport, no overhead)", flush=True)
    print(f"  by the CPU clock (not descheduled): {floor.busy_s:.1f} CPU-s", flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=10000, help="tokens per side (default 10000)")
    ap.add_argument("--common", type=int, help="shared tokens (default size/100, at least 1)")
    ap.add_argument("--key-bits", type=int, default=2048)
    ap.add_argument("--workers", type=int, default=0, help="process pool size (0 = all cores)")
    ap.add_argument("--baseline-size", type=int, default=100, help="set size the straightforward version runs on")
    ap.add_argument("--floor-samples", type=int, default=200, help="operations timed per kind for the floor")
    ap.add_argument("--floor-only", action="store_true", help="measure the floor only (skip ours and the baseline)")
    args = ap.parse_args(argv)
    common = args.common if args.common is not None else max(1, args.size // 100)
    print(f"paillier {args.key_bits}-bit, {args.size} x {args.size} tokens, {common} shared; "
          f"{os.cpu_count()} cores, workers={args.workers or os.cpu_count()}", flush=True)
    print(f"modular exponentiation: {modexp_backend.describe()}", flush=True)
    floor = measure_floor(args.size, args.key_bits, args.floor_samples, cores=cores_used(args.workers))
    print_floor(floor, args.size)
    print(f"target {TARGET_S:.0f} s / floor: {TARGET_S / floor.wall_s:.2f} "
          f"(floor / target: {floor.wall_s / TARGET_S:.2f})", flush=True)
    if args.floor_only:
        return 0
    ours, hits, ours_cpu = run_ours(args.size, common, args.key_bits, args.workers)
    assert hits == common, (hits, common)
    print(f"ours, end to end over loopback gRPC (mTLS): {ours:.1f} s, {hits} hits", flush=True)
    print(f"ours / floor: {ours / floor.wall_s:.2f}", flush=True)
    print(f"ours CPU (both agencies, workers, responder start included): {ours_cpu:.1f} CPU-s; "
          f"/ floor by the CPU clock: {ours_cpu / floor.busy_s:.2f}", flush=True)
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
