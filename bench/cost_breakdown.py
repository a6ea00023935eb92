"""Where the time goes once the group operations are cheap: per record and per element, single core.

    .venv/bin/python bench/cost_breakdown.py [--records 5000] [--json out.json]

Per record of a synthetic requester file (bench data from matcher.quality's generator):
  * CSV parse (csv.reader over the file, row -> raw field dict),
  * normalisation (normalise_record of the key spec's version),
  * token building (KeySpec.tokens),
  * load_records as a whole (the sum above plus its checks), for cross-checking;
per element (token), with the backend in use:
  * the group operations: blind (requester) + evaluate (responder) + unblind_outputs (requester),
  * the responder's setup rows beyond their group operations (tag, label sealing),
  * the requester's tag lookup and label opening for a hit,
  * gRPC framing: ElementChunk / SetupChunk serialisation and parsing (protobuf),
so the largest cost after the group operations is named, not guessed.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from matcher.config import load_requester_config  # noqa: E402
from matcher.identity.normalise_n1 import RAW_FIELDS  # noqa: E402
from matcher.identity.record_sources import _resolve_columns  # noqa: E402
from matcher.identity.records import load_records  # noqa: E402
from matcher.protocols import ecdh, ecdh_index, group_backend, label_backend  # noqa: E402
from matcher.v1 import matcher_pb2 as pb  # noqa: E402


def _cold() -> None:
    """Empty the token builder's memo caches, so every repeat starts as a fresh process does."""
    from matcher.identity import match_keys

    for fn in getattr(match_keys, "_CACHED_WORD_TRANSFORMS", {}).values():
        fn.cache_clear()


def _best(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        _cold()
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return min(times)


def per_record(n: int, tmp: Path) -> dict[str, float]:
    from matcher.quality.synth import generate

    res = generate(n, 0.1, 7, tmp)
    cfg = load_requester_config(res.requester_config)
    fmt, spec = cfg.records.csv_format(), cfg.key_spec()
    from matcher.identity.normalise_n1 import normalise_record
    from matcher.identity.normalise_n2 import NORM_VERSION_N2, normalise_record_n2

    normalise = normalise_record_n2 if spec.norm_version == NORM_VERSION_N2 else normalise_record
    with res.requester.open(encoding="utf-8", newline="") as fh:
        header = next(csv.reader(fh))
    cols = _resolve_columns(header, fmt, res.requester, False)
    fields = [(f, cols[f]) for f in RAW_FIELDS if f in cols]

    def parse():
        with res.requester.open(encoding=fmt.read_encoding, newline="") as fh:
            reader = csv.reader(fh, delimiter=fmt.delimiter)
            next(reader)
            return [{f: row[i] for f, i in fields} for row in reader]

    raws = parse()
    normalised = []

    def norm():
        normalised.clear()
        for raw in raws:
            with contextlib.suppress(Exception):  # rejected rows: not part of the per-record cost
                normalised.append(normalise(raw, fmt.date_order))

    norm()
    tokens: list = []

    def tok():
        tokens.clear()
        for rec in normalised:
            tokens.extend(t for _, t in spec.tokens(rec))

    tok()
    t_parse, t_norm, t_tok = _best(parse), _best(norm), _best(tok)
    t_load = _best(lambda: load_records(res.requester, fmt, spec), repeats=2)
    return {"records": len(raws), "tokens_per_record": len(tokens) / len(raws),
            "csv_parse_us": t_parse / len(raws) * 1e6,
            "normalise_us": t_norm / len(raws) * 1e6, "tokens_us": t_tok / len(raws) * 1e6,
            "load_records_us": t_load / len(raws) * 1e6, "_tokens": tokens}


def per_element(tokens: list[bytes]) -> dict[str, float]:
    n = len(tokens)
    a, b = ecdh.new_key(), ecdh.new_key()
    blinded = ecdh.blind_tokens(a, tokens)
    evaluated = ecdh.evaluate(b, blinded)
    inv = ecdh.invert_key(a)
    outputs = ecdh.unblind_outputs(inv, evaluated)
    pairs = [(t, b"CASE-%06d" % i) for i, t in enumerate(tokens)]
    t_blind = _best(lambda: ecdh.blind_tokens(a, tokens))
    t_eval = _best(lambda: ecdh.evaluate(b, blinded))
    t_unblind = _best(lambda: ecdh.unblind_outputs(inv, evaluated))
    t_setup_rows = _best(lambda: ecdh.setup_rows(b, pairs, 10, 32))
    t_setup_nolabel = _best(lambda: ecdh.setup_rows(b, pairs, 10, 0))
    setup = ecdh.responder_setup(b, pairs, 10)
    index = ecdh_index.SetupIndex(10)
    index.add(setup.tags, setup.labels)
    t_lookup = _best(lambda: index.lookup_outputs(outputs, tokens))
    chunk = pb.MatchRequest(blinded=pb.ElementChunk(offset=0, elements=blinded))
    wire = chunk.SerializeToString()
    setup_msg = pb.MatchResponse(setup=pb.SetupChunk(tags=setup.tags, labels=setup.labels)).SerializeToString()
    t_frame = _best(lambda: pb.MatchRequest(blinded=pb.ElementChunk(offset=0, elements=blinded)).SerializeToString())
    t_parse = _best(lambda: list(pb.MatchRequest.FromString(wire).blinded.elements))
    t_setup_frame = _best(
        lambda: pb.MatchResponse(setup=pb.SetupChunk(tags=setup.tags, labels=setup.labels)).SerializeToString()
    )
    t_setup_parse = _best(lambda: pb.MatchResponse.FromString(setup_msg).setup.labels[:])
    us = 1e6 / n
    return {
        "elements": n,
        "group ops (blind + evaluate + unblind)_us": (t_blind + t_eval + t_unblind) * us,
        "setup labels beyond group ops_us": (t_setup_rows - t_setup_nolabel) * us,
        "setup tags + rows beyond blind_us": (t_setup_nolabel - t_blind) * us,
        "lookup + label open (all hits)_us": t_lookup * us,
        "grpc framing: element chunk serialise + parse, both ways_us": 2 * (t_frame + t_parse) * us,
        "grpc framing: setup chunk serialise + parse_us": (t_setup_frame + t_setup_parse) * us,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=5000)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    print(f"ristretto255 backend: {group_backend.describe()}")
    print(f"setup label sealing: {label_backend.DETAIL}")
    with tempfile.TemporaryDirectory() as tmp:
        rec = per_record(args.records, Path(tmp))
    tokens = rec.pop("_tokens")
    el = per_element(tokens)
    print(f"\nper record ({rec['records']} records, {rec['tokens_per_record']:.2f} tokens each), CPU µs:")
    for k in ("csv_parse_us", "normalise_us", "tokens_us", "load_records_us"):
        print(f"  {k[:-3]:<55} {rec[k]:8.1f}")
    print(f"\nper element ({el['elements']} tokens), CPU µs:")
    for k, v in el.items():
        if k != "elements":
            print(f"  {k[:-3]:<55} {v:8.2f}")
    if args.json:
        doc = {"backend": group_backend.describe(), "label_sealing": label_backend.DETAIL, "per_record": rec,
               "per_element": el}
        args.json.write_text(json.dumps(doc, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
