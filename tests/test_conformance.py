"""Conformance vectors: the Python implementation against the committed files, and the refusal of
installations whose tokenisation differs (docs/PROTOCOL.md §2.4, §3)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from clients import MatchFailed, TlsFiles
from matcher.errors import InvalidElement, NormalisationMismatch
from matcher.identity import conformance as conf
from matcher.identity import normalise_n2 as normalize_n2
from matcher.identity.match_keys import KeySpec
from matcher.protocols import ecdh, ecdh_reveal, keyed_hash, paillier
from matcher.requester import run_match
from matcher.v1 import matcher_pb2 as pb
from matcher.v1 import matcher_pb2_grpc as pb_grpc

VECTORS = Path(conf.__file__).parent / "vectors"
ROOT = Path(__file__).resolve().parent.parent

#: A committed vector file never changes: a changed output is a new normalisation or protocol
#: version, i.e. a new file (add it here and point matcher.identity.conformance at it).
FROZEN = {
    "n1.v1.json": "87db0fd590d61aba90f9ae231253abfceaec5f450952ad424329064679c07212",
    "n2.v1.json": "cfa647b4c755acff70e3341f33a25d8c9ba71df524cb0cd9e744ce98998011e0",
    "n3.v1.json": "6f072b3b3d57af65972be0e61c575e80751e5ec7c7e7d2d80a9263429f0f8617",
    "protocol.v2.json": "642898cd28b71f78cfab579e9970bdee338a44e903937c6d378a6cda6a78e543",
}


@pytest.mark.parametrize("name", sorted(FROZEN))
def test_committed_vector_files_are_never_changed(name):
    assert hashlib.sha256((VECTORS / name).read_bytes()).hexdigest() == FROZEN[name], (
        f"{name} changed: a changed vector is a new version (new file), never an edit"
    )


@pytest.mark.parametrize("version", ["n1", "n2", "n3"])
def test_normaliser_reproduces_every_normalisation_vector(version):
    doc = conf.read_vectors(conf.NORM_VECTOR_FILES[version])
    keyspec = conf.vectors_keyspec(doc)
    wrong = []
    for v in doc["vectors"]:
        want = {k: v[k] for k in ("fields", "tokens", "error") if k in v}
        if conf.run_vector(keyspec, version, v) != want:
            wrong.append(v["id"])
    assert not wrong
    c = conf.conformance(version)
    assert c.ok and c.digest == c.expected_digest and len(c.digest) == 64


def test_normalisation_vectors_cover_every_rule():
    doc = conf.read_vectors("n2.v1.json")
    rules = " ".join(v["rule"] for v in doc["vectors"])
    for word in ("cyrillic", "ukrainian", "greek", "arabic", "umlaut", "anyascii", "particles", "nicknames",
                 "double surname", "initials", "DMY", "MDY", "YMD", "compact", "partial", "countries names",
                 "nationality words", "numeric", "documents", "ICAO", "sex", "phonetic"):
        assert word in rules, word
    used = {f for _, fields in doc["key_spec"] for f in fields}
    for transform in ("metaphone(", "nysiis(", "soundex(", "folded_soundex(", "initial(", "first(", "year(",
                      "year_month("):
        assert any(transform in f for f in used), transform


def test_generator_reproduces_the_committed_files():
    out = subprocess.run([sys.executable, "tools/gen_vectors.py", "--check"], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr


def _altered_nicknames(monkeypatch):
    """Tokenisation as a changed table would give it: 'bill' no longer becomes 'william'."""
    monkeypatch.setitem(normalize_n2.NICKNAMES, "bill", "billy")
    for f in (normalize_n2.given_forms, normalize_n2.name_token_forms, normalize_n2.family_forms):
        f.cache_clear()
    conf.conformance.cache_clear()
    yield
    for f in (normalize_n2.given_forms, normalize_n2.name_token_forms, normalize_n2.family_forms):
        f.cache_clear()
    conf.conformance.cache_clear()


@pytest.fixture
def altered(monkeypatch):
    yield from _altered_nicknames(monkeypatch)


def test_an_altered_table_is_detected_by_the_vectors(altered):
    c = conf.conformance("n2")
    assert not c.ok and "nickname-bill" in c.differing
    assert c.digest != c.expected_digest
    with pytest.raises(NormalisationMismatch, match="nickname-bill"):
        conf.require_conformant("n2")


def test_a_broken_installation_refuses_to_serve(agencies, start, altered):
    with pytest.raises(NormalisationMismatch, match="differs from its conformance vectors"):
        start()


def test_policy_publishes_the_conformance_digest(agencies, start):
    running = start()
    cfg = agencies.requester_config()
    from matcher.requester import client_for

    with client_for(cfg, f"127.0.0.1:{running.port}") as client:
        policy = client.get_policy()
    c = conf.conformance(cfg.key_spec().norm_version)
    assert policy.norm_conformance_digest == c.digest == c.expected_digest
    assert "anyascii==" in policy.norm_libraries and "pycountry==" in policy.norm_libraries


def test_requester_with_altered_tokenisation_is_refused_before_any_data_moves(agencies, start, monkeypatch):
    running = start()  # a conforming responder
    gen = _altered_nicknames(monkeypatch)
    next(gen)
    try:
        with pytest.raises(NormalisationMismatch) as err:
            run_match(agencies.requester_config(), agencies.workdir / "agency_b_records.csv",
                      f"127.0.0.1:{running.port}", out=agencies.workdir / "hits.csv")
        msg = str(err.value)
        mine = conf.conformance("n2").digest
        assert f"requester conformance digest {mine}" in msg
        assert f"responder conformance digest {running.state.conformance.digest}" in msg
        assert "nickname-bill" in msg and "anyascii==" in msg
        assert not (agencies.workdir / "hits.csv").exists()
    finally:
        next(gen, None)


def test_responder_refuses_a_hello_with_another_conformance_digest(agencies, start, monkeypatch):
    """A requester that skips its own check (another implementation) is refused by the responder."""
    running = start()
    gen = _altered_nicknames(monkeypatch)
    next(gen)
    try:
        monkeypatch.setattr("clients.match_client.check_peer", lambda *a: None)
        monkeypatch.setattr(conf.NormConformance, "ok", property(lambda self: True))
        cfg = agencies.requester_config()
        from matcher.requester import client_for

        with client_for(cfg, f"127.0.0.1:{running.port}") as client, pytest.raises(MatchFailed) as err:
            from matcher.identity.records import load_records

            loaded = load_records(agencies.workdir / "agency_b_records.csv", cfg.records.csv_format(), cfg.key_spec())
            client.match(loaded.records, cfg.key_spec())
        assert err.value.code == grpc.StatusCode.FAILED_PRECONDITION
        assert conf.conformance("n2").digest in err.value.details
        assert running.state.conformance.digest in err.value.details
        assert "tokenises differently" in err.value.details
    finally:
        next(gen, None)


def test_hello_without_a_digest_is_refused(agencies, start):
    running = start()
    cfg = agencies.requester_config()
    tls = TlsFiles.load(cfg.tls.cert, cfg.tls.key, cfg.tls.ca)
    creds = grpc.ssl_channel_credentials(root_certificates=tls.ca, private_key=tls.key, certificate_chain=tls.cert)
    options = [("grpc.ssl_target_name_override", cfg.requester.server_name)] if cfg.requester.server_name else []
    with grpc.secure_channel(f"127.0.0.1:{running.port}", creds, options=options) as ch:
        stub = pb_grpc.ResponderStub(ch)
        hello = pb.Hello(protocol="ecdh", key_spec_fingerprint=cfg.key_spec().fingerprint(), request_size=1,
                         reveal="requester", wire_version=2)
        with pytest.raises(grpc.RpcError) as err:
            list(stub.Match(iter([pb.MatchRequest(hello=hello)]), timeout=30))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "(none or not a SHA-256 digest)" in err.value.details()


# -- protocol vectors ------------------------------------------------------------------------
PROTO = json.loads((VECTORS / conf.PROTOCOL_VECTOR_FILE).read_text(encoding="utf-8"))
EC = PROTO["ecdh"]
H = bytes.fromhex


@pytest.mark.parametrize("i", range(len(EC["tokens"])))
def test_ecdh_vectors(i):
    v = EC["tokens"][i]
    a, a_inv, b = H(EC["scalar_a_hex"]), H(EC["scalar_a_inverse_hex"]), H(EC["scalar_b_hex"])
    token = v["token_utf8"].encode("utf-8")
    assert token.hex() == v["token_hex"]
    assert ecdh.invert_key(a) == a_inv
    assert ecdh.hash_to_group(token) == H(v["h_point_hex"])
    assert hashlib.sha512(H(v["h2g_input_hex"])).hexdigest() == v["h2g_sha512_hex"]
    assert ecdh.blind_tokens(a, [token]) == [H(v["blinded_hex"])]
    assert ecdh.evaluate(b, [H(v["blinded_hex"])]) == [H(v["evaluated_hex"])]
    assert ecdh.unblind(a_inv, [H(v["evaluated_hex"])]) == [H(v["unblinded_hex"])]
    out = ecdh.unblind_outputs(a_inv, [H(v["evaluated_hex"])])[0]
    assert out.hex() == v["output_sha512_hex"]
    assert ecdh.derive_tags([H(v["unblinded_hex"])], EC["tag_length"]) == [H(v["tag_hex"])]
    assert out[32:] == H(v["label_key_hex"])
    # sealing: the implementation's plaintext layout and AEAD, with the vector's fixed nonce
    refs = [t["case_ref_utf8"].encode("utf-8") for t in EC["tokens"]]
    size = ecdh.label_size(refs)
    assert size == EC["label_plaintext_bytes"]
    assert ecdh.label_ad(token) == H(v["label_ad_hex"]) == H(EC["label_ad_prefix_hex"]) + hashlib.sha256(token).digest()
    nonce = H(v["nonce_hex"])
    plain = H(v["label_plaintext_hex"])
    assert nonce + ChaCha20Poly1305(out[32:]).encrypt(nonce, plain, ecdh.label_ad(token)) == H(v["label_hex"])
    ref = v["case_ref_utf8"].encode("utf-8")
    assert ecdh.open_label(H(v["unblinded_hex"]), H(v["label_hex"]), token) == ref
    assert ecdh.open_label(H(v["unblinded_hex"]), H(v["label_hex"]), token + b"x") is None  # bound to its token
    sealed = ecdh.seal_label(H(v["unblinded_hex"]), ref, size, token)
    assert len(sealed) == len(H(v["label_hex"]))
    assert ecdh.open_label(H(v["unblinded_hex"]), sealed, token) == ref
    setup = ecdh.responder_setup(b, [(token, ref)], EC["tag_length"])
    assert setup.tags == [H(v["tag_hex"])]
    # reveal cardinality: the setup is the points b·H(y); the requester returns a·(b·H(y))
    points = ecdh.responder_setup(b, [(token, ref)], EC["tag_length"], points_only=True)
    assert points.tags == [H(v["cardinality_setup_point_hex"])] == [H(v["unblinded_hex"])]
    assert ecdh.evaluate(a, points.tags) == [H(v["cardinality_reblinded_hex"])] == [H(v["evaluated_hex"])]


def test_ecdh_hit_proof_vector():
    v = EC["hit_proof"]
    pairs = [(H(x["p_hex"]), H(x["z_hex"])) for x in v["pairs"]]
    context = ecdh_reveal.hit_proof_context(v["session_id"])
    assert context == H(v["context_hex"])
    seed, m, z = ecdh_reveal._combine(pairs, context)
    assert (seed, m, z) == (H(v["seed_hex"]), H(v["m_hex"]), H(v["z_hex"]))
    assert ecdh_reveal.verify_hits(pairs, H(v["proof_hex"]), context)
    assert not ecdh_reveal.verify_hits(pairs, H(v["proof_hex"]), ecdh_reveal.hit_proof_context("another-session"))
    assert ecdh_reveal.verify_hits(pairs, ecdh_reveal.prove_hits(H(EC["scalar_a_hex"]), pairs, context), context)


@pytest.mark.parametrize("case", EC["invalid_points"], ids=lambda c: c["why"])
def test_ecdh_invalid_point_vectors(case):
    with pytest.raises(InvalidElement):
        ecdh.check_point(H(case["point_hex"]))
    with pytest.raises(InvalidElement):
        ecdh.evaluate(H(EC["scalar_b_hex"]), [H(case["point_hex"])])


def test_setup_id_vector():
    from matcher.storage.setup_cache import setup_id

    v = EC["setup"]
    setup = ecdh.ResponderSetup(v["tag_length"], [H(t) for t in v["tags_hex"]], [H(x) for x in v["labels_hex"]])
    assert v["tags_hex"] == sorted(v["tags_hex"])
    assert setup_id(setup) == v["setup_id"]


def test_tag_length_vectors():
    for v in EC["tag_lengths"]:
        assert ecdh.tag_length(v["setup_size"], v["request_size"]) == v["tag_length"]


def test_keyed_hash_vectors():
    secret = H(PROTO["keyed_hash"]["secret_hex"])
    for v in PROTO["keyed_hash"]["tokens"]:
        assert keyed_hash.tag(secret, H(v["token_hex"])) == H(v["tag_hex"])


def test_paillier_encoding_vectors():
    for v in PROTO["paillier"]["tokens"]:
        e = paillier.encode_token(H(v["token_hex"]))
        assert e.to_bytes(PROTO["paillier"]["encoding_bytes"], "big") == H(v["encoding_hex"])
        assert paillier.bin_of(e, v["bin_seed"], v["bins"]) == v["bin"]
        pay = paillier.encode_payload(e, v["payload_case_ref_utf8"].encode(), v["payload_n_bits"])
        assert hex(pay)[2:] == v["payload_hex"]


def test_key_spec_fingerprint_vectors():
    for v in PROTO["key_spec_fingerprints"]:
        ks = KeySpec.from_mapping(v["norm_version"], {k: f for k, f in v["keys"]})
        assert ks.canonical_json() == v["canonical_json"]
        assert ks.fingerprint() == hashlib.sha256(v["canonical_json"].encode("ascii")).hexdigest() == v["fingerprint"]


def test_paillier_session_vectors():
    from matcher.protocols import paillier_proof

    v = PROTO["paillier"]["session"]
    n, p, q = (int(v[k], 16) for k in ("n_hex", "p_hex", "q_hex"))
    assert paillier.ciphertext_bytes(n) == v["ciphertext_bytes"]
    paillier.check_modulus(n)
    proof = H(v["modulus_proof_hex"])
    assert paillier_proof.prove(n, p, q) == proof
    paillier_proof.verify(n, proof)
    roots = [int(x, 16) for x in v["roots_hex"]]
    assert [paillier.encode_token(H(t)) for t in v["tokens_hex"]] == roots[:2]
    coeffs = [int(x, 16) for x in v["coefficients_hex"]]
    assert [int(c) for c in paillier.poly_from_roots(roots, n)] == coeffs
    assert all(paillier.evaluate_plain(coeffs, r, n) == 0 for r in roots)
    key = paillier.RequesterSecret(n, p, q, hs=4)
    ctx = paillier._requester_ctx(key)
    n2 = n * n
    for a, c in zip(coeffs, v["encrypted_coefficients_hex"], strict=True):
        assert ctx.decrypt_mod_p(paillier.check_ciphertext(H(c), n, n2, len(H(c)))) == a % p
    replies = {r["case"]: r for r in v["replies"]}
    ref = v["case_ref_utf8"].encode()
    for case, reply in replies.items():
        value = paillier.decrypt_replies(key, [H(reply["reply_hex"])])[0]
        assert value == int(reply["plaintext_mod_n_hex"], 16) % p
        query = paillier.RequesterQuery(key, 0, 1, 3, [roots], {r: i for i, r in enumerate(roots[:2])})
        found = list(paillier.find_hits(query, [value]))
        if case == "member":
            assert found == [(0, ref)] and value == int(reply["payload_hex"], 16)
        elif case == "member-cardinality":
            assert value == 0 and paillier.count_zeros([value]) == 1
        else:
            assert found == [] and value != 0
