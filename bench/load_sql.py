"""Loading N records from PostgreSQL against the same N records from CSV: rows/s and peak RSS.

    make bench-load-sql              # N = 1,000,000 (the default; a few minutes on 2 cores)
    make bench-load-sql N=200000     # smaller

Writes N synthetic rows (names, date of birth, sex, nationality, passport: every
default match key computable) to a CSV file, copies the same file into a PostgreSQL
table (COPY), then loads them in separate child processes, one after the other:

- ``csv``: ``load_records`` of the CSV file (the whole pipeline: parse, normalise, tokenise);
- ``postgres``: ``load_records`` of the table (server-side cursor, ``--batch`` rows per fetch,
  then the same pipeline);
- ``postgres rows only``: the rows fetched and turned into cells, no tokenising (the
  database's share of the time).

Each child's peak RSS comes from wait4. PostgreSQL: ``--url`` (a SQLAlchemy URL, e.g.
``postgresql+psycopg://matcher@127.0.0.1:5432/postgres``), or by default a throw-away
server started like the tests do (tests/pg_server.py; as root it runs as ``postgres``).
Prints one table; ``--json FILE`` also writes the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

COLUMNS = ["record_id", "given_names", "family_name", "date_of_birth", "sex", "nationality",
           "document_number", "document_country", "case_ref"]
GIVEN = ["Anna", "Ben", "Cora", "Dmitri", "Elena", "Farid", "Greta", "Hugo", "Ines", "Jürgen", "Karim", "Lea",
         "Marta", "Nikos", "Olga", "Pavel", "Rosa", "Sven", "Tomás", "Ute"]
FAMILY = ["Berg", "Lind", "Müller", "Kozlov", "Haddad", "Papadopoulos", "García", "Nowak", "Rossi", "Dubois",
          "Jansen", "Silva", "Horvat", "Novák", "Öztürk", "Kowalski", "Larsen", "Costa", "Ivanov", "Fischer"]
COUNTRIES = ["DEU", "FRA", "POL", "ITA", "ESP", "NLD", "SWE", "GRC", "AUT", "CZE"]


def write_csv(path: Path, n: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(COLUMNS)
        for i in range(n):
            w.writerow([f"R-{i}", rng.choice(GIVEN), rng.choice(FAMILY),
                        f"{rng.randint(1, 28):02d}.{rng.randint(1, 12):02d}.{rng.randint(1940, 2005)}",
                        rng.choice("MF"), rng.choice(COUNTRIES), f"P{rng.randrange(10**9):09d}",
                        rng.choice(COUNTRIES), f"CASE-{i:08d}"])


def copy_into(url: str, csv_path: Path) -> float:
    """COPY the CSV into table ``watchlist`` (replaced); returns seconds."""
    import sqlalchemy as sa

    t0 = time.perf_counter()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE IF EXISTS watchlist")
        conn.exec_driver_sql(f"CREATE TABLE watchlist ({', '.join(c + ' text' for c in COLUMNS)})")
        cur = conn.connection.driver_connection.cursor()
        with cur.copy("COPY watchlist FROM STDIN WITH (FORMAT csv, HEADER true)") as copy, csv_path.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                copy.write(chunk)
    engine.dispose()
    return time.perf_counter() - t0


def child(kind: str, target: str, batch: int) -> None:
    """Load once and print {"rows": ..., "used": ..., "seconds": ...} on stdout."""
    from matcher.identity.match_keys import (
        DEFAULT_MATCH_KEYS,
        DEFAULT_NORM_VERSION,
        KeySpec,
    )
    from matcher.identity.records import CsvFormat, load_records
    from matcher.identity.sql_source import SqlSource, open_rows

    spec = KeySpec.from_mapping(DEFAULT_NORM_VERSION, dict(DEFAULT_MATCH_KEYS))
    fmt = CsvFormat(columns={}, date_order="DMY")
    t0 = time.perf_counter()
    if kind == "rows":
        n = 0
        with open_rows(SqlSource(target, table="watchlist", batch=batch)) as (_h, rows):
            for _row in rows:
                n += 1
        used = n
    else:
        source = Path(target) if kind == "csv" else SqlSource(target, table="watchlist", batch=batch)
        loaded = load_records(source, fmt, spec, require_case_ref=True)
        n, used = loaded.rows_read, len(loaded.records)
    print(json.dumps({"rows": n, "used": used, "seconds": time.perf_counter() - t0}))


def measure(kind: str, target: str, batch: int) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, "--target", target, "--batch", str(batch)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{kind}: the child failed")
    result = json.loads(out.strip().splitlines()[-1])
    result["peak_rss_mb"] = usage.ru_maxrss / 1024
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000, help="rows (default 1,000,000)")
    ap.add_argument("--batch", type=int, default=5000, help="rows per fetch from PostgreSQL (default 5000)")
    ap.add_argument("--url", help="an existing PostgreSQL (SQLAlchemy URL); default: start a throw-away one")
    ap.add_argument("--json", type=Path, help="also write the figures to this file")
    ap.add_argument("--child", choices=["csv", "pg", "rows"], help=argparse.SUPPRESS)
    ap.add_argument("--target", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.target, args.batch)
        return
    from tests.pg_server import postgres_server

    with tempfile.TemporaryDirectory(prefix="matcher-load-sql-") as tmp:
        csv_path = Path(tmp) / "watchlist.csv"
        write_csv(csv_path, args.n)
        server = contextlib.nullcontext(args.url) if args.url else postgres_server()
        with server as url:
            copied = copy_into(url, csv_path)
            print(f"{args.n} rows; COPY into PostgreSQL took {copied:.1f} s; batch {args.batch} rows per fetch")
            results = {"csv": measure("csv", str(csv_path), args.batch),
                       "postgres": measure("pg", url, args.batch),
                       "postgres rows only": measure("rows", url, args.batch)}
    print(f"{'source':<20} {'rows':>9} {'used':>9} {'seconds':>8} {'rows/s':>9} {'peak RSS MB':>12}")
    for name, r in results.items():
        print(f"{name:<20} {r['rows']:>9} {r['used']:>9} {r['seconds']:>8.1f} {r['rows'] / r['seconds']:>9.0f} "
              f"{r['peak_rss_mb']:>12.0f}")
    if args.json:
        args.json.write_text(json.dumps({"n": args.n, "batch": args.batch, "results": results}, indent=2))


if __name__ == "__main__":
    main()
