"""Write the conformance vectors (dev tool): ``python tools/gen_vectors.py [--check]``.

Normalisation vectors (matcher/identity/vectors/n1.v1.json, n2.v1.json, n3.v1.json): raw record ->
normalised fields -> tokens, computed by this checkout's normaliser (n3's records are the published
spellings of vectors/n3/spellings.json, matcher.identity.n3_vectors). Protocol vectors
(protocol.v2.json): token -> group element -> blinded with fixed test scalars ->
evaluated -> tag -> sealed label (fixed nonces, in vectors only), keyed-hash tags,
paillier encodings, key-spec fingerprints; protocol.v2-paillier-choices.json: paillier's two
candidate bins per token.

A vector file, once committed, is never changed: a changed output is a new normalisation
or protocol version, so this tool refuses to overwrite a file whose content would differ
(write a new version's file instead and point matcher.identity.conformance at it).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from matcher.identity.conformance import NORM_VECTOR_FILES, PROTOCOL_VECTOR_FILE, run_vector, vectors_keyspec
from matcher.identity.match_keys import DEFAULT_MATCH_KEYS, KeySpec
from matcher.protocols import ecdh, ecdh_reveal, keyed_hash, paillier

OUT = Path(__file__).resolve().parent.parent / "matcher" / "identity" / "vectors"

KEY_SPEC = [
    ["document", ["document_number", "document_country"]],
    ["names_dob", ["folded_soundex(name_tokens)", "date_of_birth_or_swapped"]],
    ["phonetic_dob", ["metaphone(family_name)", "initial(given_names)", "date_of_birth"]],
    ["given_dob_nationality", ["metaphone(first(given_names))", "date_of_birth", "nationality"]],
    ["names_year", ["metaphone(name_tokens)", "year_of_birth", "nationality"]],
    ["nysiis_family", ["nysiis(family_name)", "year_month(date_of_birth)"]],
    ["soundex_given", ["soundex(given_names)", "sex"]],
    ["plain_names", ["given_names", "family_name", "given_initial"]],
    ["place", ["place_of_birth", "year(date_of_birth)"]],
]


def R(given="", family="", dob="", sex="", nat="", doc="", doc_country="", place=""):  # noqa: N802
    raw = {
        "given_names": given, "family_name": family, "date_of_birth": dob, "sex": sex,
        "nationality": nat, "document_number": doc, "document_country": doc_country, "place_of_birth": place,
    }
    return {k: v for k, v in raw.items() if v}


# (id, rule, date order, raw record)
NORM_INPUTS = [
    ("latin-plain", "latin", "DMY", R("John", "Smith", "31/12/1980", "M", "GBR", "123456789", "GB", "London")),
    ("latin-diacritics", "latin diacritics", "DMY", R("José", "García", "05.03.1975", "m", "ESP", "", "", "Málaga")),
    ("latin-umlaut", "umlaut scheme ae/oe/ue", "DMY",
     R("Jürgen", "Müller", "1970-01-02", "männlich", "DEU", "C01X00T47", "D")),
    ("latin-eszett", "latin nfkc/casefold", "DMY", R("Hans-Peter", "Strauß", "12 11 1966", "M", "Deutschland")),
    ("latin-polish", "latin diacritics", "DMY",
     R("Małgorzata", "Wiśniewska", "07/08/1990", "F", "POL", "AB 123 4567", "PL")),
    ("latin-turkish", "latin diacritics", "DMY", R("Şükrü", "Öztürk", "1982-06-15", "M", "TUR")),
    ("latin-apostrophe", "apostrophes dropped", "DMY", R("Seán", "O'Brien", "01/01/1960", "M", "IRL")),
    ("latin-hyphen", "punctuation to spaces", "DMY",
     R("Anne-Marie", "Dupont-Aignan", "28/02/1972", "F", "FRA", "", "", "Saint-Étienne")),
    ("cyrillic-ru", "cyrillic schemes bgn icao german polish", "DMY",
     R("Сергей", "Иванов", "01.02.1979", "м", "RUS", "751234567", "RUS", "Москва")),
    ("cyrillic-ru-yo", "cyrillic schemes", "DMY", R("Пётр", "Щукин", "19.09.1988", "М", "Россия")),
    ("cyrillic-uk", "cyrillic ukrainian scheme", "DMY",
     R("Олексій", "Григоренко", "23.04.1985", "M", "UKR", "", "", "Київ")),
    ("cyrillic-uk-ye", "cyrillic ukrainian scheme", "DMY", R("Євген", "Ковальчук", "10.10.1991", "M", "Україна")),
    ("cyrillic-bg", "cyrillic schemes", "DMY", R("Георги", "Димитров", "14.07.1977", "M", "BGR")),
    ("cyrillic-sr", "cyrillic schemes", "DMY", R("Јован", "Јовановић", "02.03.1969", "M", "SRB")),
    ("greek", "greek elot digraphs", "DMY", R("Γεώργιος", "Παπαδόπουλος", "15/03/1985", "M", "GRC", "", "", "Αθήνα")),
    ("greek-mp-nt", "greek word-initial mp/nt, av/ev, gg", "DMY",
     R("Ευάγγελος", "Μπακογιάννης", "03/05/1981", "M", "Ελλάδα")),
    ("greek-final-sigma", "greek", "DMY", R("Νίκος", "Ντόκας", "09/09/1999", "M", "EL")),
    ("arabic-article", "arabic article and initial alif", "DMY", R("أحمد", "المصري", "1979-11-03", "M", "EGY")),
    ("arabic-ta-marbuta", "arabic ta marbuta, long vowels", "DMY", R("فاطمة", "الحسيني", "1992-02-29", "F", "SYR")),
    ("arabic-latin-particle", "particles al", "DMY", R("Ahmed", "Al-Masri", "1979-11-03", "M", "Egypt")),
    ("han", "anyascii han", "YMD", R("伟", "王", "1988/08/08", "M", "CHN")),
    ("hangul", "anyascii hangul", "YMD", R("민준", "김", "1995-12-01", "M", "KOR")),
    ("devanagari", "anyascii devanagari", "DMY", R("राहुल", "शर्मा", "11/11/1987", "M", "IND")),
    ("hebrew", "anyascii hebrew", "DMY", R("דוד", "כהן", "06/06/1976", "M", "ISR")),
    ("georgian", "anyascii georgian", "DMY", R("გიორგი", "ბერიძე", "04/04/1984", "M", "GEO")),
    ("armenian", "anyascii armenian", "DMY", R("Արամ", "Պետրոսյան", "21/01/1973", "M", "ARM")),
    ("particles-van-der", "particles", "DMY", R("Jan", "van der Berg", "13/05/1968", "M", "NLD")),
    ("particles-de-la", "particles", "DMY", R("Marie", "de la Cruz", "30/06/1990", "F", "ESP")),
    ("particles-von", "particles", "DMY", R("Karl", "von und zu Lichtenstein", "01/12/1950", "M", "AUT")),
    ("particles-bin", "particles", "DMY", R("Omar", "bin Laden", "10/03/1957", "M", "SAU")),
    ("spanish-double-surname", "double surname: first surname alternative", "DMY",
     R("María José", "García López", "17/02/1983", "F", "ESP")),
    ("nickname-bill", "nicknames", "MDY", R("Bill", "Clinton", "08/19/1946", "M", "USA")),
    ("nickname-pepe", "nicknames", "DMY", R("Pepe", "Martínez", "19/03/1970", "M", "Spanien")),
    ("nickname-vova", "nicknames", "DMY", R("Vova", "Petrov", "07/10/1952", "M", "russian")),
    ("initials", "initials kept as one-letter words", "DMY", R("J. R. R.", "Tolkien", "03/01/1992", "M", "GBR")),
    ("date-dmy", "dates DMY", "DMY", R("Anna", "Schmidt", "03.04.1985", "F", "DEU")),
    ("date-mdy", "dates MDY", "MDY", R("Anna", "Schmidt", "04/03/1985", "F", "DEU")),
    ("date-ymd", "dates YMD", "YMD", R("Anna", "Schmidt", "1985.04.03", "F", "DEU")),
    ("date-iso-any-order", "dates ISO whatever the order", "MDY", R("Anna", "Schmidt", "1985-04-03", "F", "DEU")),
    ("date-compact", "dates compact YYYYMMDD", "DMY", R("Anna", "Schmidt", "19850403", "F", "DEU")),
    ("date-swapped-same", "dates day=month: no swapped alternative", "DMY",
     R("Anna", "Schmidt", "05/05/1985", "F", "DEU")),
    ("date-day-over-12", "dates day>12: no swapped alternative", "DMY", R("Anna", "Schmidt", "25/05/1985", "F", "DEU")),
    ("date-year-only", "partial dates: year", "DMY", R("Ali", "Hassan", "1985", "M", "IRQ")),
    ("date-month-year", "partial dates: month/year", "DMY", R("Ali", "Hassan", "04/1985", "M", "IRQ")),
    ("date-year-month", "partial dates: year-month", "DMY", R("Ali", "Hassan", "1985-04", "M", "IRQ")),
    ("date-two-digit-year", "dates: two-digit year rejected", "DMY", R("Ali", "Hassan", "03/04/85", "M", "IRQ")),
    ("date-invalid", "dates: not a calendar date", "DMY", R("Ali", "Hassan", "31/02/1985", "M", "IRQ")),
    ("date-before-1900", "dates: before 1900", "DMY", R("Ali", "Hassan", "01/01/1850", "M", "IRQ")),
    ("country-alpha2", "countries alpha-2", "DMY", R("Li", "Wei", "", "", "cn", "E12345678", "CN")),
    ("country-numeric", "countries numeric", "DMY", R("Li", "Wei", "", "", "156", "E12345678", "156")),
    ("country-alias-uk", "countries aliases", "DMY", R("Tom", "Jones", "", "", "UK", "", "England")),
    ("country-kosovo", "countries kosovo XKX", "DMY", R("Arben", "Krasniqi", "", "", "Kosovo", "", "RKS")),
    ("country-german-name", "countries names de", "DMY", R("Paul", "Meier", "", "", "Schweiz", "", "Österreich")),
    ("country-french-name", "countries names fr", "DMY", R("Paul", "Meier", "", "", "Allemagne", "", "Royaume-Uni")),
    ("country-russian-name", "countries names ru", "DMY", R("Paul", "Meier", "", "", "Германия", "", "Франция")),
    ("country-arabic-name", "countries names ar", "DMY", R("Paul", "Meier", "", "", "سوريا", "", "العراق")),
    ("country-greek-name", "countries names el", "DMY", R("Paul", "Meier", "", "", "Γερμανία", "", "Ελλάδα")),
    ("country-turkish-name", "countries names tr", "DMY", R("Paul", "Meier", "", "", "Almanya", "", "Suriye")),
    ("country-demonym", "countries nationality words", "DMY", R("Paul", "Meier", "", "", "deutsch", "", "British")),
    ("country-unknown", "countries: unknown rejected", "DMY", R("Paul", "Meier", "", "", "Atlantis")),
    ("document-icao", "documents ICAO check digit alternative", "DMY",
     R("Erika", "Mustermann", "12/08/1964", "F", "D", "C01X00T478", "D")),
    ("document-fillers", "documents < fillers and spacing", "DMY",
     R("Erika", "Mustermann", "12/08/1964", "F", "D", "L01X00T47<<", "DEU")),
    ("document-punctuation", "documents punctuation", "DMY",
     R("Erika", "Mustermann", "12/08/1964", "F", "D", "ab-12.34 56", "DEU")),
    ("document-cyrillic", "documents transliterated", "DMY", R("Иван", "Петров", "", "", "", "АВ123456", "UKR")),
    ("document-no-check", "documents without valid check digit", "DMY",
     R("Erika", "Mustermann", "", "", "", "123456780", "DEU")),
    ("sex-words", "sex words", "DMY", R("Eva", "Novak", "", "weiblich", "CZE")),
    ("sex-unknown", "sex unknown marker", "DMY", R("Eva", "Novak", "", "<", "CZE")),
    ("sex-invalid", "sex invalid rejected", "DMY", R("Eva", "Novak", "", "maybe", "CZE")),
    ("sex-turkish-word", "sex: words outside the table rejected", "DMY", R("Eva", "Novak", "", "E", "CZE")),
    ("placeholder-name", "placeholder name absent", "DMY", R("-", "Novak", "01/01/1980", "F", "CZE")),
    ("fullwidth", "nfkc fullwidth", "DMY", R("ＪＯＨＮ", "ＳＭＩＴＨ", "31/12/1980", "M", "GBR")),
    ("phonetic-folds", "phonetic folds sch/sz/cz/w", "DMY", R("Wojciech", "Szczepański", "11/11/1971", "M", "POL")),
    ("phonetic-article", "phonetic glued arabic article", "DMY", R("Mohammed", "Alshami", "01/05/1980", "M", "JOR")),
    ("only-document", "record with a document only", "DMY", R("", "", "", "", "", "X1234567", "FRA")),
]


def norm_file(version: str) -> dict:
    doc = {
        "format": "matcher-norm-vectors/1",
        "norm_version": version,
        "about": "raw record -> normalised fields (alternatives, primary first) -> (key, token) pairs; "
        "see docs/PROTOCOL.md section 2. Never edit: a changed output is a new normalisation version.",
        "key_spec": KEY_SPEC,
        "vectors": [],
    }
    keyspec = vectors_keyspec(doc)
    for vid, rule, order, raw in NORM_INPUTS:
        v = {"id": vid, "rule": rule, "date_order": order, "record": raw}
        v.update(run_vector(keyspec, version, v))
        doc["vectors"].append(v)
    return doc


# Fixed test scalars and nonces: in vectors only, never in production.
def _scalar(seed: bytes) -> bytes:
    import rbcl

    return rbcl.crypto_core_ristretto255_scalar_reduce(hashlib.sha512(b"matcher test scalar " + seed).digest())


ECDH_TOKENS = [
    "matcher/v1/n2/document/C01X00T47\x1fDEU",
    "matcher/v1/n2/names_dob/I150 S623\x1f1979-02-01",
    "matcher/v1/n2/phonetic_dob/MLR\x1fj\x1f1970-01-02",
    "matcher/v1/n1/name_dob/ivanov sergey\x1f1979-02-01",
]
CASE_REFS = ["CASE-2024-0001", "", "A;B", "ÄKTE/ΦΑΚΕΛΟΣ/ملف 42"]


def _test_blum_prime(seed: bytes, bits: int) -> int:
    """A deterministic Blum prime for the vectors (never a real key)."""
    import gmpy2

    start = int.from_bytes(hashlib.shake_256(b"matcher test prime " + seed).digest(bits // 8), "big")
    p = gmpy2.next_prime(start | (3 << (bits - 2)) | 3)
    while p % 4 != 3:
        p = gmpy2.next_prime(p)
    return int(p)


def _paillier_session() -> dict:
    """One bin of a paillier session under a fixed 2048-bit test key, with fixed randomness."""
    from matcher.protocols import paillier_proof

    p, q = _test_blum_prime(b"p", 1024), _test_blum_prime(b"q", 1024)
    p, q = max(p, q), min(p, q)
    n, n2 = p * q, (p * q) ** 2
    size = paillier.ciphertext_bytes(n)
    rnd = lambda label: int.from_bytes(hashlib.shake_256(b"matcher test " + label).digest(256), "big") % n  # noqa: E731
    tokens = [t.encode() for t in ECDH_TOKENS[:2]]
    encodings = [paillier.encode_token(t) for t in tokens]
    roots = encodings + [(1 << 128) + 12345]
    coeffs = [int(c) for c in paillier.poly_from_roots(roots, n)]
    rhos = [rnd(b"rho %d" % i) for i in range(len(coeffs))]
    cts = [(1 + a * n) * pow(r, n, n2) % n2 for a, r in zip(coeffs, rhos, strict=True)]

    def evaluate(e: int, pay: int, label: bytes) -> tuple[int, int, int]:
        r, rho = rnd(b"r " + label), rnd(b"rho' " + label)
        acc = cts[-1] * (1 + e * n) % n2
        for c in reversed(cts[:-1]):
            acc = pow(acc, e, n2) * c % n2
        acc = pow(acc, r, n2) * (1 + pay * n) % n2 * pow(rho, n, n2) % n2
        return r, rho, acc

    ref = b"CASE-2024-0001"
    replies = []
    for name, tok, with_pay in (("member", tokens[0], True), ("member-cardinality", tokens[0], False),
                                ("non-member", ECDH_TOKENS[2].encode(), True)):
        e = paillier.encode_token(tok)
        pay = paillier.encode_payload(e, ref, n.bit_length()) if with_pay else 0
        r, rho, c = evaluate(e, pay, name.encode())
        replies.append({"case": name, "token_hex": tok.hex(), "payload_hex": hex(pay)[2:], "r_hex": hex(r)[2:],
                        "rerandomiser_rho_hex": hex(rho)[2:], "reply_hex": c.to_bytes(size, "big").hex(),
                        "plaintext_mod_n_hex": hex(((pow(c, (p - 1) * (q - 1), n2) - 1) // n
                                                    * pow((p - 1) * (q - 1), -1, n)) % n)[2:]})
    return {
        "about": "test key and randomness; E(m) = (1 + m·n)·rho^n mod n^2; roots = the two tokens' encodings and "
        "one dummy root 2^128 + 12345; reply = E(r·P(e) + pay) re-randomised by rho'^n",
        "p_hex": hex(p)[2:], "q_hex": hex(q)[2:], "n_hex": hex(n)[2:], "ciphertext_bytes": size,
        "modulus_proof_hex": paillier_proof.prove(n, p, q).hex(),
        "tokens_hex": [t.hex() for t in tokens], "roots_hex": [hex(x)[2:] for x in roots],
        "coefficients_hex": [hex(a)[2:] for a in coeffs], "rho_hex": [hex(x)[2:] for x in rhos],
        "encrypted_coefficients_hex": [c.to_bytes(size, "big").hex() for c in cts],
        "case_ref_utf8": ref.decode(), "replies": replies,
    }


def _hit_proof(a: bytes, a_inv: bytes, b: bytes) -> dict:
    """A hit report's proof (reveal both) over the first two tokens, with a fixed nonce scalar r."""
    import rbcl

    session_id = "0123456789abcdef"
    context = ecdh_reveal.hit_proof_context(session_id)
    pairs = []
    for tok in ECDH_TOKENS[:2]:
        z = ecdh.evaluate(b, ecdh.blind_tokens(a, [tok.encode()]))[0]  # the responder's reply b·a·H(x)
        pairs.append((ecdh.unblind(a_inv, [z])[0], z))  # (P = b·H(x), Z = a·P)
    seed, m, zsum = ecdh_reveal._combine(pairs, context)
    coeffs = [ecdh_reveal._scalar(seed + k.to_bytes(8, "big")) for k in range(len(pairs))]
    r = _scalar(b"hit proof r")
    t = rbcl.crypto_scalarmult_ristretto255(r, m)
    e = ecdh_reveal._scalar(ecdh_reveal._PROOF_CHALLENGE + seed + m + zsum + t)
    s_ = rbcl.crypto_core_ristretto255_scalar_sub(r, rbcl.crypto_core_ristretto255_scalar_mul(e, a))
    proof = e + s_
    assert ecdh_reveal.verify_hits(pairs, proof, context)
    return {
        "session_id": session_id, "context_hex": context.hex(),
        "pairs": [{"p_hex": p.hex(), "z_hex": z.hex()} for p, z in pairs],
        "seed_hex": seed.hex(), "coefficients_hex": [d.hex() for d in coeffs], "m_hex": m.hex(), "z_hex": zsum.hex(),
        "nonce_scalar_r_hex": r.hex(), "t_hex": t.hex(), "e_hex": e.hex(), "s_hex": s_.hex(), "proof_hex": proof.hex(),
    }


def _invalid_points() -> list[dict]:
    """Encodings a receiver must refuse."""
    import rbcl

    good = ecdh.hash_to_group(b"x")
    high = bytes(good[:31]) + bytes([good[31] | 0x80])
    return [
        {"why": "identity", "point_hex": bytes(32).hex()},
        {"why": "bit 255 set on a valid encoding", "point_hex": high.hex()},
        {"why": "not a canonical field element", "point_hex": (b"\xff" * 31 + b"\x7f").hex()},
        {"why": "31 bytes", "point_hex": good[:31].hex()},
        {"why": "negative field element (odd)", "point_hex": (b"\x01" + bytes(31)).hex()},
    ] if not rbcl.crypto_core_ristretto255_is_valid_point(b"\x01" + bytes(31)) else []


def protocol_file() -> dict:
    a, b = _scalar(b"requester a"), _scalar(b"responder b")
    a_inv = ecdh.invert_key(a)
    tag_len = 16
    refs = [r.encode("utf-8") for r in CASE_REFS]
    size = ecdh.label_size(refs)
    ec = []
    for i, (tok, ref) in enumerate(zip(ECDH_TOKENS, refs, strict=True)):
        t = tok.encode("utf-8")
        h_in = ecdh._H2G_DOMAIN + t
        h = ecdh.hash_to_group(t)
        blinded = ecdh.blind_tokens(a, [t])[0]
        evaluated = ecdh.evaluate(b, [blinded])[0]
        unblinded = ecdh.unblind(a_inv, [evaluated])[0]
        y = ecdh.blind_tokens(b, [t])[0]
        assert unblinded == y
        out = ecdh.output_hashes([y])[0]
        nonce = hashlib.sha256(b"matcher test nonce %d" % i).digest()[: ecdh.NONCE_BYTES]
        plain = len(ref).to_bytes(2, "big") + ref
        plain += bytes(size - len(plain))
        ad = ecdh.label_ad(t)
        label = nonce + ChaCha20Poly1305(out[32:]).encrypt(nonce, plain, ad)
        assert ecdh.open_label(y, label, t) == ref
        ec.append({
            "token_utf8": tok, "token_hex": t.hex(), "h2g_input_hex": h_in.hex(),
            "h2g_sha512_hex": hashlib.sha512(h_in).hexdigest(), "h_point_hex": h.hex(),
            "blinded_hex": blinded.hex(), "evaluated_hex": evaluated.hex(), "unblinded_hex": unblinded.hex(),
            "output_sha512_hex": out.hex(), "tag_hex": out[:tag_len].hex(), "label_key_hex": out[32:].hex(),
            "case_ref_utf8": CASE_REFS[i], "label_plaintext_hex": plain.hex(), "nonce_hex": nonce.hex(),
            "label_ad_hex": ad.hex(), "label_hex": label.hex(),
            "cardinality_setup_point_hex": y.hex(), "cardinality_reblinded_hex": ecdh.evaluate(a, [y])[0].hex(),
        })
    proof = _hit_proof(a, a_inv, b)
    from matcher.storage.setup_cache import setup_id

    rows = sorted((bytes.fromhex(v["tag_hex"]), bytes.fromhex(v["label_hex"])) for v in ec)
    setup = {"tag_length": tag_len, "tags_hex": [t.hex() for t, _ in rows], "labels_hex": [x.hex() for _, x in rows],
             "setup_id": setup_id(ecdh.ResponderSetup(tag_len, [t for t, _ in rows], [x for _, x in rows]))}
    secret = hashlib.sha256(b"matcher test keyed-hash secret").digest()
    kh = [{"token_hex": t.encode().hex(), "tag_hex": keyed_hash.tag(secret, t.encode()).hex()} for t in ECDH_TOKENS]
    pa = []
    for t in ECDH_TOKENS:
        e = paillier.encode_token(t.encode())
        pa.append({
            "token_hex": t.encode().hex(), "encoding_hex": e.to_bytes(paillier.ENCODING_BYTES, "big").hex(),
            "bin_seed": 1234567, "bins": 97, "bin": paillier.bin_of(e, 1234567, 97),
            "payload_n_bits": 2048, "payload_case_ref_utf8": "CASE-2024-0001",
            "payload_hex": hex(paillier.encode_payload(e, b"CASE-2024-0001", 2048))[2:],
        })
    paillier_session = _paillier_session()
    specs = []
    for version, keys in (("n2", DEFAULT_MATCH_KEYS), ("n1", {"document": ["document_number", "document_country"],
                                                             "name_dob": ["name_tokens", "date_of_birth"]})):
        ks = KeySpec.from_mapping(version, keys)
        specs.append({"norm_version": version, "keys": [[k, list(f)] for k, f in keys.items()],
                      "canonical_json": ks.canonical_json(), "fingerprint": ks.fingerprint()})
    tag_lengths = [{"setup_size": s, "request_size": r, "tag_length": ecdh.tag_length(s, r)}
                   for s, r in ((1, 1), (1000, 1000), (10**6, 10**6), (10**8, 10**8), (2**40, 2**40))]
    return {
        "format": "matcher-protocol-vectors/2",
        "about": "see docs/PROTOCOL.md; fixed test scalars and nonces in vectors only. Never edit: "
        "a changed value is a new protocol version.",
        "key_spec_fingerprints": specs,
        "ecdh": {
            "scalar_a_hex": a.hex(), "scalar_a_inverse_hex": a_inv.hex(), "scalar_b_hex": b.hex(),
            "tag_length": tag_len, "label_plaintext_bytes": size, "label_ad_prefix_hex": ecdh.LABEL_AD_PREFIX.hex(),
            "tokens": ec, "tag_lengths": tag_lengths, "hit_proof": proof, "invalid_points": _invalid_points(),
            "setup": setup,
        },
        "keyed_hash": {"secret_hex": secret.hex(), "tokens": kh},
        "paillier": {"encoding_bytes": paillier.ENCODING_BYTES, "tokens": pa, "session": paillier_session},
    }


#: Two-choice binning for paillier (PaillierParams.choices = 2), added beside protocol.v2.json:
#: nothing in that file changes, so the protocol version does not either.
PAILLIER_CHOICES_FILE = "protocol.v2-paillier-choices.json"


def paillier_choices_file() -> dict:
    """Each token's two candidate bins (bin, bin2) for a few bin counts, including 2."""
    rows = []
    for t in ECDH_TOKENS:
        e = paillier.encode_token(t.encode())
        for bins in (2, 3, 97, 8334):
            b1, b2 = paillier.bins_of(e, 1234567, bins)
            rows.append({"token_hex": t.encode().hex(),
                         "encoding_hex": e.to_bytes(paillier.ENCODING_BYTES, "big").hex(),
                         "bin_seed": 1234567, "bins": bins, "bin": b1, "bin2": b2})
    return {
        "format": "matcher-protocol-vectors/2",
        "about": "paillier with PaillierParams.choices = 2 (docs/PROTOCOL.md §8): bin(e) = XXH3_64(e, seed) mod B, "
        "bin2(e) = (bin(e) + 1 + XXH3_64(e, seed xor 1) mod (B - 1)) mod B. Never edit: a changed value is a new "
        "protocol version.",
        "tokens": rows,
    }


def dump(doc: dict) -> str:
    return json.dumps(doc, ensure_ascii=False, indent=1) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only compare with the committed files")
    args = ap.parse_args()
    from matcher.identity.n3_vectors import build_vectors as n3_file

    files = {NORM_VECTOR_FILES[v]: norm_file(v) for v in ("n1", "n2")} | {NORM_VECTOR_FILES["n3"]: n3_file()}
    files |= {PROTOCOL_VECTOR_FILE: protocol_file(), PAILLIER_CHOICES_FILE: paillier_choices_file()}
    status = 0
    for name, doc in files.items():
        path = OUT / name
        text = dump(doc)
        if path.exists() and path.read_text(encoding="utf-8") != text:
            print(f"{name}: differs from the committed file; a changed vector is a new version "
                  "(write a new file, do not edit this one)", file=sys.stderr)
            status = 1
        elif not path.exists():
            if args.check:
                print(f"{name}: missing", file=sys.stderr)
                status = 1
            else:
                path.write_text(text, encoding="utf-8")
                print(f"wrote {path}")
        else:
            print(f"{name}: unchanged")
    return status


if __name__ == "__main__":
    sys.exit(main())
