"""``matcher dev-certs`` keeps its CA, so agencies can be added later (issue 12, item 6)."""

from __future__ import annotations

import stat

from cryptography import x509

from matcher.cli import main


def _cert(path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_a_second_run_reuses_the_ca_so_earlier_certificates_stay_valid(tmp_path, capsys):
    assert main(["dev-certs", "--out", str(tmp_path), "agency-a", "agency-b"]) == 0
    ca_before = (tmp_path / "ca.pem").read_bytes()
    assert stat.S_IMODE((tmp_path / "ca.key").stat().st_mode) == 0o600
    capsys.readouterr()
    assert main(["dev-certs", "--out", str(tmp_path), "agency-c"]) == 0
    out = capsys.readouterr().out
    assert "kept" in out
    assert (tmp_path / "ca.pem").read_bytes() == ca_before
    ca = _cert(tmp_path / "ca.pem")
    for name in ("agency-a", "agency-b", "agency-c"):
        _cert(tmp_path / f"{name}.pem").verify_directly_issued_by(ca)  # raises if not


def test_an_existing_certificate_is_replaced_only_with_force(tmp_path, capsys):
    assert main(["dev-certs", "--out", str(tmp_path), "agency-a"]) == 0
    first = (tmp_path / "agency-a.pem").read_bytes()
    ca_before = (tmp_path / "ca.pem").read_bytes()
    capsys.readouterr()
    assert main(["dev-certs", "--out", str(tmp_path), "agency-a", "agency-b"]) == 2
    err = capsys.readouterr().err
    assert "agency-a.pem" in err and "--force" in err
    assert (tmp_path / "agency-a.pem").read_bytes() == first and not (tmp_path / "agency-b.pem").exists()
    assert main(["dev-certs", "--out", str(tmp_path), "--force", "agency-a"]) == 0
    assert (tmp_path / "agency-a.pem").read_bytes() != first
    assert (tmp_path / "ca.pem").read_bytes() == ca_before


def test_a_ca_without_its_key_is_not_replaced_silently(tmp_path, capsys):
    assert main(["dev-certs", "--out", str(tmp_path), "agency-a"]) == 0
    (tmp_path / "ca.key").unlink()  # as an older dev-certs left it
    capsys.readouterr()
    assert main(["dev-certs", "--out", str(tmp_path), "agency-b"]) == 2
    assert "ca.key" in capsys.readouterr().err


def test_it_says_how_long_the_certificates_are_valid(tmp_path, capsys):
    assert main(["dev-certs", "--out", str(tmp_path), "--days", "90", "agency-a"]) == 0
    out = capsys.readouterr().out
    ca, cert = _cert(tmp_path / "ca.pem"), _cert(tmp_path / "agency-a.pem")
    assert f"valid until {cert.not_valid_after_utc:%Y-%m-%d}" in out and "90 days" in out
    assert f"valid until {ca.not_valid_after_utc:%Y-%m-%d}" in out
