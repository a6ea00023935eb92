"""Paillier polynomial PSI: both halves in one process against a plaintext intersection."""

from __future__ import annotations

import math
import random
from pathlib import Path

import gmpy2
import pytest

from matcher.errors import InvalidElement
from matcher.parallel import Workers
from matcher.protocols import paillier as pl
from matcher.protocols import paillier_proof
from matcher.protocols import paillier_responder as plr
from matcher.storage import session_log

KEY = pl.generate_key(2048)
KEY_PROOF = paillier_proof.prove(KEY.n, KEY.p, KEY.q)


def _run(req_tokens, resp_entries, *, cardinality=False, workers=None, **overrides):
    q = pl.build_query(req_tokens, KEY, **overrides)
    store = plr.CoefficientStore(KEY.n, q.bins, q.degree)
    off = 0
    for part in pl.encrypt_query(q, bins_per_task=3, workers=workers):
        store.add(part, off)
        off += len(part)
    assert off == q.element_count
    items = plr.responder_items(resp_entries, KEY.bits, with_payload=not cardinality)
    rr = plr.Rerandomiser.new(KEY.n)
    replies = [c for part in plr.evaluate_all(store, items, q.seed, rr, batch=4, workers=workers, choices=q.choices)
               for c in part]
    assert len(replies) == q.choices * len(items.encodings)
    residues = pl.decrypt_replies(KEY, replies, workers=workers)
    if cardinality:
        return q, pl.count_zeros(residues)
    return q, {req_tokens[i]: ref for i, ref in pl.find_hits(q, residues)}


def _sets(rng, n_req, n_resp, common):
    shared = [f"shared-{i}".encode() for i in range(common)]
    req = shared + [f"req-{i}".encode() for i in range(n_req - common)]
    resp = [(t, f"CASE-{k}".encode()) for k, t in enumerate(shared)]
    resp += [(f"resp-{i}".encode(), f"OTHER-{i}".encode()) for i in range(n_resp - common)]
    rng.shuffle(req)
    rng.shuffle(resp)
    return req, resp


def test_hits_equal_plaintext_intersection_with_case_refs():
    req, resp = _sets(random.Random(1), 12, 10, 5)
    _, hits = _run(req, resp)
    expected = {t: r for t, r in resp if t in set(req)}
    assert hits == expected and len(hits) == 5


def test_two_choice_binning_hits_equal_plaintext_intersection():
    req, resp = _sets(random.Random(11), 40, 30, 9)
    q, hits = _run(req, resp, _choices=2)
    assert q.choices == 2 and q.degree <= 3  # 40 bins of 2 for 40 tokens (3 with chance < 2^-16)
    assert hits == {t: r for t, r in resp if t in set(req)} and len(hits) == 9


def test_two_choice_cardinality_counts_each_hit_once():
    """A requester token sits in one of its two bins: of a common token's two replies one is 0."""
    req, resp = _sets(random.Random(12), 30, 25, 7)
    assert _run(req, resp, cardinality=True, _choices=2)[1] == 7


def test_two_choice_overflow_raises_degree_and_loses_nothing():
    req, resp = _sets(random.Random(13), 9, 6, 6)
    q, hits = _run(req, resp, _choices=2, _bins=2, _degree=2)
    assert q.degree >= 5  # 9 tokens in 2 bins cannot fit 2 each
    assert hits == dict(resp)


def _hall_holds(pairs, bins, capacity):
    from itertools import combinations

    for k in range(2, bins + 1):
        for subset in combinations(range(bins), k):
            inside = set(subset)
            if sum(1 for a, b in pairs if a in inside and b in inside) > capacity * k:
                return False
    return True


def test_two_choice_placement_is_found_exactly_when_one_exists():
    rng = random.Random(14)
    seen = {True: 0, False: 0}
    for _ in range(300):
        bins, capacity = rng.randint(2, 6), rng.randint(1, 3)
        pairs = []
        for _ in range(rng.randint(1, bins * capacity + 2)):
            a, b = rng.sample(range(bins), 2)
            pairs.append((a, b))
        placed = pl.place_two_choice(pairs, bins, capacity)
        exists = _hall_holds(pairs, bins, capacity)
        assert (placed is not None) == exists
        seen[exists] += 1
        if placed is not None:
            assert sorted(i for content in placed for i in content) == list(range(len(pairs)))
            assert all(len(c) <= capacity and all(b in pairs[i] for i in c) for b, c in enumerate(placed))
    assert seen[True] > 20 and seen[False] > 20


def test_two_choice_failure_bound_is_above_the_observed_rate():
    """The union bound must not be below what happens: 20 bins of 2 for 30 items fail often."""
    rng = random.Random(15)
    m, bins, capacity = 30, 20, 2
    fails = 0
    trials = 400
    for _ in range(trials):
        pairs = [tuple(rng.sample(range(bins), 2)) for _ in range(m)]
        fails += pl.place_two_choice(pairs, bins, capacity) is None
    assert fails > 0
    assert 2 ** pl.two_choice_failure_log2(m, bins, capacity) >= fails / trials
    assert pl.two_choice_failure_log2(10_000, 8334, 2) <= -40  # the 10k parameters


def test_bins_of_are_two_distinct_bins_and_the_first_is_bin_of():
    for i in range(200):
        e = pl.encode_token(b"t%d" % i)
        b1, b2 = pl.bins_of(e, 99, 7)
        assert b1 == pl.bin_of(e, 99, 7) and b1 != b2 and 0 <= b2 < 7
    assert {pl.bins_of(pl.encode_token(b"x%d" % i), 5, 2) for i in range(50)} == {(0, 1), (1, 0)}


CHOICES_VECTORS = "protocol.v2-paillier-choices.json"


def test_two_choice_bin_vectors():
    """docs/PROTOCOL.md §8 [V: paillier bin2]; the file is frozen like the other vector files."""
    import hashlib

    from matcher.identity import conformance

    path = Path(conformance.__file__).parent / "vectors" / CHOICES_VECTORS
    assert hashlib.sha256(path.read_bytes()).hexdigest() == (
        "099fe065ba5290ec2b1edb38b893da00c6226700228fb14907ec820aba188d2a"
    ), f"{CHOICES_VECTORS} changed: a changed vector is a new version (new file), never an edit"
    rows = conformance.read_vectors(CHOICES_VECTORS)["tokens"]
    assert {r["bins"] for r in rows} == {2, 3, 97, 8334}
    for r in rows:
        e = pl.encode_token(bytes.fromhex(r["token_hex"]))
        assert e.to_bytes(pl.ENCODING_BYTES, "big").hex() == r["encoding_hex"]
        assert pl.bins_of(e, r["bin_seed"], r["bins"]) == (r["bin"], r["bin2"])


def test_one_choice_unless_the_responder_takes_two(monkeypatch):
    """A responder from before PaillierParams.choices (Policy.paillier_choices unset) evaluates one
    bin per token: a requester must not place tokens in second bins it would never look at."""
    monkeypatch.setattr(pl, "costs_for", lambda bits: pl.COSTS_MULTI_BUFFER)
    tokens = [b"t%d" % i for i in range(300)]
    assert pl.build_query(tokens, KEY, max_choices=1).choices == 1
    assert pl.build_query(tokens, KEY, max_choices=2).choices == 2


def test_the_requester_bins_after_reading_the_policy(monkeypatch):
    from clients.sessions.paillier import PaillierRequesterSession

    monkeypatch.setattr(pl, "costs_for", lambda bits: pl.COSTS_MULTI_BUFFER)
    session = PaillierRequesterSession.__new__(PaillierRequesterSession)
    session.tokens, session._key, session._query = [b"t%d" % i for i in range(2000)], KEY, None
    session._responder_size, session._max_choices = None, 1
    assert session.query.choices == 1  # no Policy read: one choice
    session.use_policy(pb.Policy(setup_size=2000, paillier_choices=0), "r")
    assert session.query.choices == 1  # an older responder
    session.use_policy(pb.Policy(setup_size=2000, paillier_choices=2), "r")
    assert session.query.choices == 2
    session.use_policy(pb.Policy(setup_size=200_000, paillier_choices=2), "r")
    assert session.query.choices == 1  # 100 replies per requester token: twice the masks cost more


def test_multi_buffer_costs_choose_two_choices_for_10k():
    """With the multi-buffer exponentiation, 10k tokens: two candidate bins of degree 2 (16,668
    coefficients, 20,000 replies of one Horner step each) instead of one bin of degree 17."""
    params = pl.choose_params(10_000, costs=pl.COSTS_MULTI_BUFFER)
    assert (params.choices, params.degree) == (2, 2) and params.coefficients < 20_000
    assert pl.choose_params(10_000, costs=pl.COSTS_GMPY2).choices == 1  # replies cost 125 encryptions there
    assert pl.choose_params(1, costs=pl.COSTS_MULTI_BUFFER).choices == 1


def test_duplicate_responder_tokens_merge_case_refs():
    _, hits = _run([b"a", b"b"], [(b"a", b"R2"), (b"a", b"R1"), (b"c", b"R3")])
    assert hits == {b"a": b"R1;R2"}


def test_overflowing_bin_raises_degree_and_loses_nothing():
    req, resp = _sets(random.Random(2), 9, 6, 6)
    q, hits = _run(req, resp, _bins=2, _degree=1)
    assert q.degree >= 5  # 9 tokens in 2 bins cannot fit degree 1
    assert hits == dict(resp)


@pytest.mark.parametrize("n_req, n_resp", [(0, 3), (3, 0), (0, 0)])
def test_empty_sets(n_req, n_resp):
    req = [f"x{i}".encode() for i in range(n_req)]
    resp = [(f"x{i}".encode(), b"R") for i in range(n_resp)]
    _, hits = _run(req, resp)
    assert hits == {}


def test_cardinality_mode_counts_only():
    req, resp = _sets(random.Random(3), 8, 8, 3)
    _, count = _run(req, resp, cardinality=True)
    assert count == 3


def test_process_pool_gives_the_same_hits():
    req, resp = _sets(random.Random(4), 10, 10, 4)
    with Workers(processes=2) as pool:
        assert _run(req, resp, workers=pool)[1] == _run(req, resp)[1]


@pytest.mark.parametrize("step", [pl.STEP_COST_MULTI_BUFFER, pl.STEP_COST_GMPY2])
def test_parameters_bound_overflow_probability(step):
    for m in (1, 10, 1000, 10_000):
        b, d = pl.choose_bins(m, step=step)
        assert pl.overflow_log2(m, b, d) <= -40
        assert d <= pl.DEFAULT_MAX_DEGREE


def test_cheaper_horner_steps_buy_fewer_coefficients():
    """With the multi-buffer exponentiation a Horner step costs ~1.5 encryptions, not ~5: fewer,
    fuller bins (10k tokens: 170,000 coefficients of degree 17 instead of 280,000 of degree 14)."""
    fast_b, fast_d = pl.choose_bins(10_000, step=pl.STEP_COST_MULTI_BUFFER)
    slow_b, slow_d = pl.choose_bins(10_000, step=pl.STEP_COST_GMPY2)
    assert fast_b * fast_d < slow_b * slow_d and fast_d > slow_d

    def cost(step, b, d):
        return step * 10_000 * (d - 1) + b * d

    for step, (b, d) in ((pl.STEP_COST_MULTI_BUFFER, (fast_b, fast_d)), (pl.STEP_COST_GMPY2, (slow_b, slow_d))):
        other = (slow_b, slow_d) if (b, d) == (fast_b, fast_d) else (fast_b, fast_d)
        assert cost(step, b, d) <= cost(step, *other)


def test_dummy_roots_are_short_unpredictable_and_never_encodings():
    q = pl.build_query([b"a", b"b", b"c"], KEY, _bins=2, _degree=6)
    encodings = set(q.encodings)
    dummies = [r for roots in q.root_lists for r in roots if r not in encodings]
    assert len(dummies) == 2 * q.degree - 3 and len(set(dummies)) == len(dummies)
    assert all(1 << 128 <= r < 1 << 256 for r in dummies)
    assert all(pl.evaluate_plain(pl.poly_from_roots(roots, KEY.n), e, KEY.n) == 0
               for roots in q.root_lists for e in roots)


@pytest.mark.parametrize("window", [8, pl.REQ_WINDOW])
def test_fixed_base_tables_give_powmod(window):
    m = gmpy2.mpz(KEY.p) ** 2
    fb = pl.FixedBase(KEY.hs, m, 224, window)
    for e in (0, 1, (1 << 224) - 1, 1 << 223, *(random.getrandbits(224) for _ in range(20))):
        assert fb.pow(e) == gmpy2.powmod(KEY.hs, e, m)


def test_a_bad_ciphertext_inside_a_batch_is_named():
    """The batch's one gcd fails, then the element is found and named."""
    n = gmpy2.mpz(KEY.n)
    size = pl.ciphertext_bytes(n)
    ctx = pl._RequesterCtx(KEY)
    good = [pl.to_wire(ctx.encrypt(i), size) for i in range(6)]
    store = plr.CoefficientStore(KEY.n, 2, 3)
    store.add(good[:3], 0)
    with pytest.raises(InvalidElement, match="element 4 .*not invertible"):
        store.add([good[3], pl.to_wire(gmpy2.mpz(KEY.q) * 777, size), good[5]], 3)


def test_polynomial_has_the_roots():
    roots = [5, 7, 11]
    coeffs = pl.poly_from_roots(roots, KEY.n)
    assert all(pl.evaluate_plain(coeffs, r, KEY.n) == 0 for r in roots)
    assert pl.evaluate_plain(coeffs, 6, KEY.n) != 0


def test_payload_roundtrip_and_capacity():
    e = pl.encode_token(b"t")
    assert pl.decode_payload(pl.encode_payload(e, b"DE-1", 2048), 2048) == (e, b"DE-1")
    assert pl.decode_payload(12345 << 900, 2048) is None
    with pytest.raises(ValueError):
        pl.encode_payload(e, b"x" * (pl.payload_capacity(2048) + 1), 2048)
    assert pl.encode_payload(e, b"x" * 200, 2048 * 2) < 1 << (2048 - 8)


@pytest.mark.parametrize("bad", ["zero", "n2", "multiple_of_p", "short"])
def test_bad_ciphertexts_are_refused(bad):
    n = gmpy2.mpz(KEY.n)
    size = pl.ciphertext_bytes(n)
    value = {"zero": 0, "n2": n * n, "multiple_of_p": gmpy2.mpz(KEY.p) * 12345, "short": 5}[bad]
    data = int(value).to_bytes(size, "big") if bad != "short" else b"\x05"
    store = plr.CoefficientStore(KEY.n, 1, 1)
    with pytest.raises(InvalidElement, match="element 0"):
        store.add([data], 0)


@pytest.mark.parametrize(
    "n",
    [
        (1 << 1023) * 3 + 1,  # too small
        KEY.p * KEY.p,  # square
        KEY.n * 2,  # even (and 2049 bits)
        int(gmpy2.next_prime(1 << 2100)),  # prime
        3 * int(gmpy2.next_prime(1 << 2100)),  # small factor
    ],
)
def test_bad_moduli_are_refused(n):
    with pytest.raises(InvalidElement):
        pl.check_modulus(n)


def test_good_modulus_accepted():
    pl.check_modulus(KEY.n)


# -- end to end over mTLS gRPC ------------------------------------------------------------------
import grpc  # noqa: E402

from clients import MatchFailed, TlsFiles  # noqa: E402
from clients.sessions.paillier import PaillierRequesterSession  # noqa: E402
from matcher.cli import main as cli_main  # noqa: E402
from matcher.requester import run_match  # noqa: E402
from matcher.v1 import matcher_pb2 as pb  # noqa: E402
from matcher.v1 import matcher_pb2_grpc as pb_grpc  # noqa: E402
from tests.conftest import demo_token_overlap, norm_digest  # noqa: E402
from tests.test_e2e import EXPECTED_DEMO  # noqa: E402


@pytest.fixture
def small_keys(monkeypatch):
    """Sessions reuse one 2048-bit key (keygen per test is the slow part) and run inline."""
    orig = PaillierRequesterSession.__init__

    def init(self, *a, **kw):
        kw.setdefault("_key", KEY)
        kw["workers"] = None
        orig(self, *a, **kw)

    monkeypatch.setattr(PaillierRequesterSession, "__init__", init)


def _paillier_agencies(agencies, reveal="requester"):
    agencies.edit("responder", 'protocols = ["ecdh"]', 'protocols = ["ecdh", "paillier"]\nworkers = 1')
    if reveal != "requester":
        agencies.edit("responder", 'reveal = "requester"', f'reveal = "{reveal}"')
        agencies.edit("requester", 'reveal = "requester"', f'reveal = "{reveal}"')


def test_policy_offers_paillier_and_demo_hits_match_ecdh(agencies, start, small_keys):
    _paillier_agencies(agencies)
    agencies.edit("requester", 'protocol = "ecdh"', 'protocol = "paillier"')
    running = start()
    peer = f"127.0.0.1:{running.port}"
    out = agencies.workdir / "hits.csv"
    run = run_match(agencies.requester_config(), agencies.workdir / "agency_b_records.csv", peer, out=out)
    assert {h.record_id: (h.match_keys, h.case_ref) for h in run.result.hits} == EXPECTED_DEMO
    assert out.read_text().splitlines()[0] == "record_id,match_keys,strength,case_ref"


def test_two_choice_binning_end_to_end_gives_the_same_hits(agencies, start, small_keys, monkeypatch):
    """The Hello's choices = 2: the responder evaluates each own token in both bins (twice the replies)."""
    _paillier_agencies(agencies)
    agencies.edit("requester", 'protocol = "ecdh"', 'protocol = "paillier"')
    asked = []

    def two_choices(m, r=None, costs=None, max_choices=2):
        asked.append((r, max_choices))
        return pl.BinParams(2, max(2, m // 2 + 1), 3)

    monkeypatch.setattr(pl, "choose_params", two_choices)
    accepted = []
    from clients.sessions import paillier as client_paillier

    orig = client_paillier.PaillierRequesterSession.on_evaluated
    monkeypatch.setattr(client_paillier.PaillierRequesterSession, "on_evaluated",
                        lambda self, chunk: (accepted.append(self.accepted.setup_size), orig(self, chunk))[1])
    running = start()
    run = run_match(agencies.requester_config(), agencies.workdir / "agency_b_records.csv",
                    f"127.0.0.1:{running.port}", out=None)
    assert {h.record_id: (h.match_keys, h.case_ref) for h in run.result.hits} == EXPECTED_DEMO
    cfg = agencies.responder_config()
    from matcher.identity.records import load_records

    own = {t for r in load_records(cfg.responder.watchlist, cfg.records.csv_format(), cfg.key_spec(),
                                   require_case_ref=True).records for _, t in r.tokens}
    assert accepted and accepted[0] == 2 * len(own)
    # the responder's Policy said it evaluates two bins, and how many tokens it holds
    assert [c for _, c in asked] == [2] and asked[0][0] and asked[0][0] >= len(own)


def test_cli_protocol_flag(agencies, start, small_keys, capsys):
    _paillier_agencies(agencies)
    running = start()
    out = agencies.workdir / "hits-cli.csv"
    rc = cli_main(["match", "--config", str(agencies.requester_toml), "--records",
                   str(agencies.workdir / "agency_b_records.csv"), "--peer", f"127.0.0.1:{running.port}",
                   "--out", str(out), "--protocol", "paillier"])
    assert rc == 0
    assert len(out.read_text().splitlines()) == 1 + len(EXPECTED_DEMO)


def test_cardinality_mode_end_to_end(agencies, start, small_keys):
    _paillier_agencies(agencies, reveal="cardinality")
    agencies.edit("requester", 'protocol = "ecdh"', 'protocol = "paillier"')
    running = start()
    run = run_match(agencies.requester_config(), agencies.workdir / "agency_b_records.csv",
                    f"127.0.0.1:{running.port}", out=None)
    # the count is of tokens both hold (a person hits by several keys and spellings)
    assert run.result.hits == [] and run.result.hit_count == demo_token_overlap(agencies)[0]


def _raw(agencies, running, messages):
    cfg = agencies.requester_config()
    tls = TlsFiles.load(cfg.tls.cert, cfg.tls.key, cfg.tls.ca)
    creds = grpc.ssl_channel_credentials(tls.ca, tls.key, tls.cert)
    with grpc.secure_channel(f"127.0.0.1:{running.port}", creds,
                             options=[("grpc.ssl_target_name_override", "agency-a")]) as ch:
        return list(pb_grpc.ResponderStub(ch).Match(iter(messages), timeout=30))


def _hello(agencies, n=KEY.n, bins=1, degree=2, size=None, choices=0):
    fp = agencies.requester_config().key_spec().fingerprint()
    params = pb.PaillierParams(n=int(n).to_bytes((int(n).bit_length() + 7) // 8, "big"), bins=bins, degree=degree,
                               bin_seed=7, modulus_proof=KEY_PROOF if n == KEY.n else b"", choices=choices)
    return pb.MatchRequest(hello=pb.Hello(norm_conformance_digest=norm_digest(), protocol="paillier",
                                          key_spec_fingerprint=fp, reveal="requester",
                                          request_size=bins * degree if size is None else size, paillier=params,
                                          wire_version=2))


@pytest.mark.parametrize("bad", ["zero", "multiple_of_q", "too_big"])
def test_bad_ciphertext_is_invalid_argument_and_server_keeps_serving(agencies, start, small_keys, bad):
    _paillier_agencies(agencies)
    running = start()
    size = pl.ciphertext_bytes(KEY.n)
    good = int(pl._RequesterCtx(KEY).encrypt(3)).to_bytes(size, "big")
    n2 = KEY.n * KEY.n
    value = {"zero": 0, "multiple_of_q": KEY.q * 99, "too_big": n2 + 1}[bad]
    elements = [good, value.to_bytes(size + (1 if bad == "too_big" and value.bit_length() > 8 * size else 0), "big")]
    with pytest.raises(grpc.RpcError) as rpc:
        _raw(agencies, running,
             [_hello(agencies), pb.MatchRequest(blinded=pb.ElementChunk(offset=0, elements=elements)),
                                 pb.MatchRequest(finish=pb.Finish(elements_sent=2))])
    assert rpc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "element 1" in rpc.value.details()
    ends = [r for r in session_log.rows(agencies.workdir / "agency_a_state" / "sessions.db") if r["event"] == "end"]
    assert ends[-1]["outcome"] == "INVALID_ARGUMENT" and ends[-1]["protocol"] == "paillier"
    assert "element 1" in ends[-1]["detail"]
    run = run_match(agencies.requester_config(), agencies.workdir / "agency_b_records.csv",
                    f"127.0.0.1:{running.port}", out=None)
    assert len(run.result.hits) == len(EXPECTED_DEMO)  # ecdh still fine


@pytest.mark.parametrize(
    "kw, words",
    [
        ({"n": KEY.p * KEY.p}, "modulus"),
        ({"n": (1 << 1535) + 1}, "bits"),
        ({"degree": pl.MAX_DEGREE + 1}, "degree"),
        ({"degree": 33}, "paillier_max_degree"),
        ({"size": 5}, "announced"),
        ({"choices": 3}, "candidate bins"),
        ({"choices": 2, "bins": 1}, "candidate bins"),
    ],
)
def test_bad_hello_parameters_refused(agencies, start, kw, words):
    _paillier_agencies(agencies)
    running = start()
    with pytest.raises(grpc.RpcError) as rpc:
        _raw(agencies, running, [_hello(agencies, **kw)])
    assert rpc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert words in rpc.value.details()


def test_paillier_not_offered_unless_configured(agencies, start, small_keys):
    running = start()
    with pytest.raises(grpc.RpcError) as rpc:
        _raw(agencies, running, [_hello(agencies)])
    assert rpc.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_reveal_both_is_refused_with_paillier(agencies):
    from matcher.errors import ConfigError

    agencies.edit("responder", 'protocols = ["ecdh"]', 'protocols = ["ecdh", "paillier"]')
    agencies.edit("responder", 'reveal = "requester"', 'reveal = "both"')
    with pytest.raises(ConfigError, match="not available with protocol paillier"):
        agencies.responder_config()



def test_the_modulus_proof_accepts_two_blum_primes_and_refuses_anything_else():
    """Review finding: a many-prime modulus passed the size and small-factor checks."""
    from matcher.errors import InvalidElement

    paillier_proof.verify(KEY.n, KEY_PROOF)
    other = pl.generate_key(2048)
    with pytest.raises(InvalidElement):
        paillier_proof.verify(other.n, KEY_PROOF)  # a proof for another modulus
    with pytest.raises(InvalidElement, match="missing"):
        paillier_proof.verify(KEY.n, b"")
    tampered = bytearray(KEY_PROOF)
    tampered[-5] ^= 1
    with pytest.raises(InvalidElement, match="does not verify"):
        paillier_proof.verify(KEY.n, bytes(tampered))


def test_the_modulus_proof_verifies_alike_without_the_multi_buffer_exponentiation(monkeypatch):
    from matcher.errors import InvalidElement
    from matcher.protocols import modexp_backend

    monkeypatch.setattr(modexp_backend, "_selected", (None, "gmpy2 (test)"))
    paillier_proof.verify(KEY.n, KEY_PROOF)
    tampered = bytearray(KEY_PROOF)
    tampered[-5] ^= 1
    with pytest.raises(InvalidElement, match="does not verify"):
        paillier_proof.verify(KEY.n, bytes(tampered))


def test_a_modulus_of_three_primes_cannot_be_proven():
    """Soundness: with a third prime factor some challenge has no fourth root of any of its four forms."""
    import gmpy2

    primes = [pl._blum_prime(700) for _ in range(3)]
    n = primes[0] * primes[1] * primes[2]
    w = gmpy2.mpz(2)
    while gmpy2.jacobi(w, n) != -1:
        w += 1
    stuck = 0
    for y in paillier_proof._challenges(n, w):
        forms = [(-y if a else y) * (w if b else 1) % n for a in (0, 1) for b in (0, 1)]
        if not any(all(gmpy2.legendre(v % p, p) == 1 for p in primes) for v in forms):
            stuck += 1
    assert stuck > 10  # expected M/2 = 40: an honest-looking proof cannot be built


def test_a_paillier_session_is_charged_its_guesses_and_the_responders_work(agencies, start, small_keys, monkeypatch):
    """Item: a session of few coefficients made the responder evaluate its whole watchlist for 1 unit."""
    from matcher.identity.records import load_records
    from matcher.server.budgets import BudgetLedger

    hellos = []
    fill = PaillierRequesterSession.fill_hello
    monkeypatch.setattr(PaillierRequesterSession, "fill_hello", lambda self, h: (fill(self, h), hellos.append(h)))
    _paillier_agencies(agencies)
    agencies.edit("requester", 'protocol = "ecdh"', 'protocol = "paillier"')
    cfg = agencies.responder_config()
    own = {t for r in load_records(cfg.responder.watchlist, cfg.records.csv_format(), cfg.key_spec(),
                                   require_case_ref=True).records for _, t in r.tokens}
    # The charge is known from the Hello and reserved before any work: a budget of 1 refuses
    # the session at once, and the refusal names what the session would cost.
    agencies.edit("responder", "daily_budget = 100000", "daily_budget = 1")
    running = start()
    with pytest.raises(MatchFailed) as err:
        run_match(agencies.requester_config(), agencies.workdir / "agency_b_records.csv",
                  f"127.0.0.1:{running.port}", out=None)
    (hello,) = hellos
    expected = 2 * hello.request_size + (hello.paillier.choices or 1) * len(own) * (hello.paillier.degree + 1)
    assert err.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert f"this request needs {expected}" in err.value.details
    assert BudgetLedger(agencies.workdir / "agency_a_state" / "budgets.db").spent("agency-b") == 0


def test_crt_roots_test_two_guesses_per_coefficient_which_is_what_is_charged():
    """A polynomial with one root mod p and another mod q tests two tokens with one coefficient:
    the reason each paillier coefficient costs 2 budget units."""
    from matcher.sessions.paillier import PaillierResponderSession

    t1, t2 = b"guess-one", b"guess-two"
    e1, e2 = pl.encode_token(t1), pl.encode_token(t2)
    p, q = int(KEY.p), int(KEY.q)
    root = (e1 * q * pow(q, -1, p) + e2 * p * pow(p, -1, q)) % int(KEY.n)  # ≡ e1 mod p, ≡ e2 mod q
    query = pl.build_query([t1], KEY, _bins=1, _degree=1, _choices=1)
    query.root_lists = [[root]]
    store = plr.CoefficientStore(KEY.n, 1, 1)
    off = 0
    for part in pl.encrypt_query(query, bins_per_task=1):
        store.add(part, off)
        off += len(part)
    items = plr.responder_items([(t1, b"CASE-1"), (t2, b"CASE-2"), (b"other", b"CASE-3")], KEY.bits, True)
    replies = [c for part in plr.evaluate_all(store, items, query.seed, plr.Rerandomiser.new(KEY.n), batch=4)
               for c in part]
    residues = pl.decrypt_replies(KEY, replies)  # the requester decrypts mod p only
    # the whole plaintexts mod n, to read them mod q too (g = n + 1: m = L(c^λ mod n²)·λ⁻¹ mod n)
    n, n2 = int(KEY.n), int(KEY.n) ** 2
    lam = (p - 1) * (q - 1) // math.gcd(p - 1, q - 1)
    plain = [(pow(int.from_bytes(c, "big"), lam, n2) - 1) // n * pow(lam, -1, n) % n for c in replies]
    assert [m % p for m in plain] == residues
    # a reply whose polynomial is 0 mod p decrypts, mod p, to its payload (far shorter than p); the
    # others are uniform noise mod p, which decodes as a payload with negligible chance
    by_p = [pl.decode_payload(m % p, KEY.bits) for m in plain if pl.decode_payload(m % p, KEY.bits)]
    by_q = [pl.decode_payload(m % q, KEY.bits) for m in plain if pl.decode_payload(m % q, KEY.bits)]
    assert [ref for _, ref in by_p] == [b"CASE-1"] and [ref for _, ref in by_q] == [b"CASE-2"]  # both guesses
    hello = pb.Hello(request_size=1, paillier=pb.PaillierParams(bins=1, degree=1))

    class _State:
        distinct_tokens = 3

        class settings:  # noqa: N801 - stands for the responder settings
            paillier_max_degree = 32

    assert PaillierResponderSession.budget_cost(_State, hello) == 2 * 1 + 3 * (1 + 1)
    # two candidate bins: the same guesses, twice the evaluations
    two = pb.Hello(request_size=4, paillier=pb.PaillierParams(bins=2, degree=2, choices=2))
    assert PaillierResponderSession.budget_cost(_State, two) == 2 * 4 + 2 * 3 * (2 + 1)


@pytest.mark.parametrize("choices", [None, 2])
def test_a_responder_cannot_forge_a_hit_from_a_one_token_query(choices):
    """With one root per bin, E(a_0) = E(−e) gives a dishonest responder E(e + payload): a false hit
    with a case reference of its choosing. Every bin is padded to degree 2 or more (two-choice bins too)."""
    token = b"matcher/v1/n2/document/ONLY-ONE"
    query = pl.build_query([token], KEY, _choices=choices)
    assert query.choices == (choices or 1)
    assert query.degree >= 2
    coefficients = [c for part in pl.encrypt_query(query, bins_per_task=1) for c in part]
    n, n2 = int(KEY.n), int(KEY.n) ** 2
    forged = []
    for c in coefficients:  # the forgery for each coefficient a_i: E(−a_i + payload with a chosen reference)
        minus = pow(int.from_bytes(c, "big"), -1, n2)
        body = pl.encode_payload(0, b"FORGED-REF", KEY.bits)
        forged.append(pl.to_wire(minus * (1 + body * n) % n2, pl.ciphertext_bytes(n)))
    assert list(pl.find_hits(query, pl.decrypt_replies(KEY, forged))) == []
