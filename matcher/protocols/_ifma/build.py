"""Build the optional AVX-512 IFMA ristretto255 extension: ``python -m matcher.protocols._ifma.build``.

Run by ``make`` right after the package is installed (best effort: a machine without a
C compiler, without the ``ipp-crypto`` wheel or not on x86-64 Linux just keeps the
portable libsodium backend). It

1. finds ``libcrypto_mb.so.13`` of the ``ipp-crypto`` wheel and checks that it is the
   exact pinned file (its SHA-256): the kernels call library symbols that Intel does
   not document, so no other build is trusted;
2. copies it into ``build/`` beside this file and drops the Intel compiler runtime
   libraries from its DT_NEEDED list with ``patchelf --remove-needed`` (the library
   uses none of their symbols, and the wheel does not ship them);
3. compiles ``ristretto255_ifma.c`` against it with the system C compiler, and beside it
   ``label_seal.c`` (the setup's batch label sealing on the system's OpenSSL) and
   ``paillier_ifma.c`` (paillier's eight-lane exponentiation and re-randomisers on the
   library's squarings), each optional on its own.

Nothing here runs an AVX-512 instruction: whether the result may be used is decided
at start-up by :mod:`matcher.protocols.group_backend` (CPU check and known-answer test).
The build directory is created 0755 and owned by the builder; the loader refuses it
if it is writable by anyone else.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
BUILD = HERE / "build"
SOURCE = HERE / "ristretto255_ifma.c"
MODULE = "_ristretto255_ifma"
LABELS_SOURCE = HERE / "label_seal.c"
LABELS_MODULE = "_labels"
PAILLIER_SOURCE = HERE / "paillier_ifma.c"
PAILLIER_MODULE = "_paillier_ifma"
#: the exact ipp-crypto release and library file the kernels were written and tested against
IPP_CRYPTO_VERSION = "2026.2.0"
LIB_NAME = "libcrypto_mb.so.13"
LIB_SHA256 = "75adfaef19bd54503b1403b34b00a885fb3690235839559ca8119cc608745d0c"
#: Intel compiler runtime libraries listed as needed but not used by libcrypto_mb
UNUSED_NEEDED = ("libsvml.so", "libirng.so", "libimf.so", "libintlc.so.5")


class BuildError(Exception):
    """The extension could not be built here; the portable backend stays in use."""


def extension_path() -> Path:
    """Where the built module lives (loaded by the group backend selector)."""
    suffix: str = sysconfig.get_config_var("EXT_SUFFIX")
    return BUILD / (MODULE + suffix)


def _find_library() -> Path:
    try:
        dist = metadata.distribution("ipp-crypto")
    except metadata.PackageNotFoundError:
        raise BuildError("the ipp-crypto wheel is not installed (pip install 'matcher[ifma]')") from None
    if dist.version != IPP_CRYPTO_VERSION:
        raise BuildError(f"ipp-crypto {dist.version} installed, the kernels need exactly {IPP_CRYPTO_VERSION}")
    for f in dist.files or ():
        if f.name == LIB_NAME:
            path = Path(str(dist.locate_file(f))).resolve()
            if path.is_file():
                return path
    raise BuildError(f"{LIB_NAME} not found in the ipp-crypto wheel")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tool(name: str) -> str:
    local = Path(sys.executable).parent / name
    found = str(local) if local.exists() else shutil.which(name)
    if not found:
        raise BuildError(f"{name} not found")
    return found


def build(verbose: bool = False) -> Path:
    """Build the extension into ``build/``; returns its path or raises :class:`BuildError`."""
    if sys.platform != "linux" or os.uname().machine != "x86_64":
        raise BuildError("the IFMA backend exists for x86-64 Linux only")
    lib = _find_library()
    if _sha256(lib) != LIB_SHA256:
        raise BuildError(f"{lib} is not the pinned libcrypto_mb build (SHA-256 differs)")
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not cc:
        raise BuildError("no C compiler (cc/gcc) on PATH")
    patchelf = _tool("patchelf")
    BUILD.mkdir(mode=0o755, exist_ok=True)
    os.chmod(BUILD, 0o755)
    with tempfile.TemporaryDirectory(dir=BUILD) as tmp:
        tmp_lib = Path(tmp) / LIB_NAME
        shutil.copyfile(lib, tmp_lib)
        needed = subprocess.run([patchelf, "--print-needed", str(tmp_lib)], check=True,
                                capture_output=True, text=True).stdout.split()
        drop = [n for n in UNUSED_NEEDED if n in needed]
        if drop:
            args = [patchelf]
            for n in drop:
                args += ["--remove-needed", n]
            subprocess.run(args + [str(tmp_lib)], check=True)
        tmp_ext = Path(tmp) / extension_path().name
        cmd = [cc, "-O2", "-fPIC", "-shared", "-Wall", "-Wno-unused-function", "-fno-strict-aliasing",
               f"-I{sysconfig.get_paths()['include']}", f"-I{HERE}", str(SOURCE), "-o", str(tmp_ext),
               f"-L{tmp}", f"-l:{LIB_NAME}", "-l:libcrypto.so.3", "-Wl,-rpath,$ORIGIN", "-Wl,-z,now"]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            raise BuildError("C compiler failed:\n" + result.stderr[-4000:])
        if verbose and result.stderr:
            print(result.stderr, file=sys.stderr)
        built = [tmp_lib, tmp_ext]
        # The batch label sealer (OpenSSL's ChaCha20-Poly1305), optional on its own: without it the
        # labels are sealed in Python (matcher.protocols.label_backend).
        tmp_labels = Path(tmp) / labels_path().name
        result = subprocess.run(
            [cc, "-O2", "-fPIC", "-shared", "-Wall", f"-I{sysconfig.get_paths()['include']}", str(LABELS_SOURCE),
             "-o", str(tmp_labels), "-l:libcrypto.so.3", "-Wl,-z,now"], capture_output=True, text=True)
        if result.returncode == 0:
            built.append(tmp_labels)
        else:
            print("matcher: label sealer not built (labels are sealed in Python):\n" + result.stderr[-2000:],
                  file=sys.stderr)
        # Paillier's exponentiation and re-randomisers, optional on their own: without them paillier
        # uses mbx_exp or gmpy2 (matcher.protocols.modexp_backend).
        tmp_paillier = Path(tmp) / paillier_path().name
        result = subprocess.run(
            [cc, "-O2", "-fPIC", "-shared", "-Wall", f"-I{sysconfig.get_paths()['include']}", str(PAILLIER_SOURCE),
             "-o", str(tmp_paillier), f"-L{tmp}", f"-l:{LIB_NAME}", "-Wl,-rpath,$ORIGIN", "-Wl,-z,now"],
            capture_output=True, text=True)
        if result.returncode == 0:
            built.append(tmp_paillier)
        else:
            print("matcher: paillier IFMA kernels not built (mbx_exp or gmpy2 is used):\n" + result.stderr[-2000:],
                  file=sys.stderr)
        for f in built:
            os.chmod(f, 0o755)
            os.replace(f, BUILD / f.name)
    return extension_path()


def labels_path() -> Path:
    """Where the built label sealer lives (loaded by :mod:`matcher.protocols.label_backend`)."""
    suffix: str = sysconfig.get_config_var("EXT_SUFFIX")
    return BUILD / (LABELS_MODULE + suffix)


def paillier_path() -> Path:
    """Where the built paillier kernels live (loaded by :mod:`matcher.protocols.modexp_backend`)."""
    suffix: str = sysconfig.get_config_var("EXT_SUFFIX")
    return BUILD / (PAILLIER_MODULE + suffix)


def main() -> int:
    """Build, then say which backend this machine will use (exit 0 either way: the backend is optional)."""
    try:
        path = build(verbose="-v" in sys.argv)
    except (BuildError, OSError, subprocess.CalledProcessError) as e:
        print(f"matcher: IFMA ristretto255 backend not built ({e}); the portable backend will be used",
              file=sys.stderr)
        return 0
    print(f"matcher: built {path.relative_to(HERE.parent.parent.parent)}", file=sys.stderr)
    # the selector runs the CPU check and the known-answer test in a child process: an
    # illegal instruction there must not take the build down
    probe = subprocess.run(
        [sys.executable, "-c", "from matcher.protocols import group_backend as g; print(g.describe())"],
        capture_output=True, text=True,
    )
    print("matcher: group backend here:", probe.stdout.strip() or f"probe failed ({probe.returncode})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
