"""The Python code in README.md and docs/*.md runs, against a real responder on loopback (issue 12, item 5).

Every ```python block is run unless the line before it is ``<!-- not runnable -->``.
A block runs in a folder holding the demo's ``requester.toml`` (with ``[requester] peer``
set to the responder started here) and the requester's records as ``persons.csv``,
so the documented file names work as written.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"(?P<before>[^\n]*)\n```python\n(?P<code>.*?)\n```", re.S)


def _blocks() -> list[tuple[str, str]]:
    found = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = doc.read_text(encoding="utf-8")
        for i, m in enumerate(BLOCK.finditer(text)):
            if m.group("before").strip() != "<!-- not runnable -->":
                found.append((f"{doc.name}#{i + 1}", m.group("code")))
    return found


def test_the_readme_has_python_code_to_run():
    assert any(name.startswith("README.md") for name, _ in _blocks())


@pytest.mark.parametrize("name, code", _blocks(), ids=[n for n, _ in _blocks()])
def test_documented_python_code_runs(name, code, agencies, start):
    running = start()
    agencies.edit("requester", "[requester]\n", f'[requester]\npeer = "127.0.0.1:{running.port}"\n')
    shutil.copy(agencies.workdir / "agency_b_records.csv", agencies.workdir / "persons.csv")
    before = {p.name for p in agencies.workdir.iterdir()}
    out = io.StringIO()  # the examples print hits: kept out of the test log
    cwd = Path.cwd()
    os.chdir(agencies.workdir)
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(code, name, "exec"), {"__name__": "__docs__"})
    finally:
        os.chdir(cwd)
    assert out.getvalue().strip(), f"{name} printed nothing"
    if '"hits.csv"' in code:
        assert "hits.csv" in {p.name for p in agencies.workdir.iterdir()} - before


def test_public_loaders_accept_str_paths(agencies, tmp_path):
    """The README's first Python example crashed on a str path: every public loader takes str or PathLike."""
    from clients import Hit, TlsFiles
    from matcher.config import load_config, load_requester_config, load_responder_config
    from matcher.identity.records import load_records
    from matcher.quality.evaluate import read_links
    from matcher.quality.synth import generate
    from matcher.requester import write_hits

    req = load_requester_config(str(agencies.requester_toml))
    assert load_responder_config(str(agencies.responder_toml)).responder.watchlist.exists()
    assert load_config(str(agencies.requester_toml)).key_spec() == req.key_spec()
    loaded = load_records(str(agencies.workdir / "agency_b_records.csv"), req.records.csv_format(), req.key_spec(),
                          rejects_path=str(tmp_path / "rejects.csv"))
    assert loaded.records and (tmp_path / "rejects.csv").exists()
    TlsFiles.load(str(req.tls.cert), str(req.tls.key), str(req.tls.ca))
    write_hits(str(tmp_path / "hits.csv"), [Hit("r1", ("document",), "C-1")])
    res = generate(20, 0.5, seed=1, out=str(tmp_path / "synth"))
    assert read_links(str(res.links))
