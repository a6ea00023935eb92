"""The committed generated code must be exactly what grpcio-tools makes of proto/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GENERATED = ("matcher_pb2.py", "matcher_pb2.pyi", "matcher_pb2_grpc.py")


def test_generated_code_matches_proto(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{ROOT / 'proto'}", f"--python_out={tmp_path}",
         f"--pyi_out={tmp_path}", f"--grpc_python_out={tmp_path}", str(ROOT / "proto/matcher/v1/matcher.proto")],
        check=True,
    )
    for name in GENERATED:
        fresh = (tmp_path / "matcher/v1" / name).read_text()
        committed = (ROOT / "matcher/v1" / name).read_text()
        assert fresh == committed, f"matcher/v1/{name} is out of date: run `make proto` and commit the result"
