"""Records from a database (issue 16, item 3): a real SQLite file and a real PostgreSQL server.

The same rows give the same tokens, the same dropped fields and the same rejected rows
from CSV and from a database; the database's rejects file names a row by its record key.
"""

from __future__ import annotations

import csv
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from matcher.audit.config_audit import audit_config
from matcher.config import load_responder_config
from matcher.errors import ConfigError, InputFileError
from matcher.identity.match_keys import KeySpec
from matcher.identity.normalise_n1 import NORM_VERSION
from matcher.identity.records import CsvFormat, load_records
from matcher.identity.sql_source import SqlSource, mask_password, open_rows
from matcher.requester import run_match

SPEC = KeySpec.from_mapping(
    NORM_VERSION, {"document": ["document_number", "document_country"], "name_dob": ["name_tokens", "date_of_birth"]}
)
COLUMNS = ["pid", "given", "surname", "dob", "doc", "doc_country", "case_id"]
MAPPING = {"record_id": "pid", "given_names": "given", "family_name": "surname", "date_of_birth": "dob",
           "document_number": "doc", "document_country": "doc_country", "case_ref": "case_id"}
ROWS = [
    ["r1", "Anna", "Berg", "02.01.1980", "X1234567", "DEU", "C-1"],
    ["r2", "Ben", "Berg", "31.02.1980", "", "", "C-2"],           # no key left: rejected
    ["r3", "Cora", "Lind", "45.45.1945", "P77", "SWE", "C-3"],    # bad date dropped, document kept
    ["r1", "Dupe", "Row", "01.01.1990", "", "", "C-4"],           # duplicate record_id: rejected
    ["", "No", "Id", "01.01.1990", "", "", "C-5"],                # no record_id: rejected
    ["r6", "Émile", "Zola", "02.04.1940", "", "", "C-6"],
]
FMT = CsvFormat(columns=MAPPING, date_order="DMY")


def _write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([COLUMNS, *rows])
    return path


def _fill(url: str, table: str, rows: list[list[str]], columns: list[str] = COLUMNS) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table}")
        conn.exec_driver_sql(f"CREATE TABLE {table} ({', '.join(c + ' TEXT' for c in columns)})")
        t = sa.Table(table, sa.MetaData(), autoload_with=conn)
        conn.execute(t.insert(), [dict(zip(columns, [v or None for v in r], strict=True)) for r in rows])
    engine.dispose()


def _rejects(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _same_as_csv(tmp_path: Path, source: SqlSource) -> None:
    from_csv = load_records(_write_csv(tmp_path / "w.csv", ROWS), FMT, SPEC, require_case_ref=True,
                            rejects_path=tmp_path / "csv.rejects.csv")
    from_db = load_records(source, FMT, SPEC, require_case_ref=True, rejects_path=tmp_path / "db.rejects.csv")
    assert from_db.records == from_csv.records
    assert [r.record_id for r in from_db.records] == ["r1", "r3", "r6"]
    assert [r.reason for r in from_db.rejected] == [r.reason.replace("line 2", "row 1 of the result")
                                                   for r in from_csv.rejected]
    assert from_db.rows_read == from_csv.rows_read == len(ROWS)
    assert len(from_db.records) + len(from_db.rejected) == from_db.rows_read  # no row dropped silently
    assert [(d.field, d.record_key) for d in from_db.dropped_fields] == [("date_of_birth", "r2"),
                                                                          ("date_of_birth", "r3")]
    # the database's rejects file names each row by its record key, the CSV's by its line
    db_rows, csv_rows = _rejects(tmp_path / "db.rejects.csv"), _rejects(tmp_path / "csv.rejects.csv")
    assert [r["record_key"] for r in db_rows] == ["r2", "r2", "r3", "r1", "row 5"]
    assert [r["line"] for r in csv_rows] == ["3", "3", "4", "5", "6"]
    assert [(r["action"], r["field"]) for r in db_rows] == [(r["action"], r["field"]) for r in csv_rows]
    assert [r["surname"] for r in db_rows] == ["Berg", "Berg", "Lind", "Row", "Id"]  # the original row, for fixing it
    assert (tmp_path / "db.rejects.csv").stat().st_mode & 0o777 == 0o600


# -- SQLite: a real database file ------------------------------------------------------------


def test_sqlite_table_and_query_give_what_the_csv_gives(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'agency.db'}"
    _fill(url, "watchlist", ROWS)
    _same_as_csv(tmp_path, SqlSource(url, table="watchlist", batch=2))
    _same_as_csv(tmp_path, SqlSource(url, query="SELECT * FROM watchlist ORDER BY rowid", batch=4))


def test_a_query_is_sent_as_written(tmp_path: Path) -> None:
    """':name' and '%' are SQL text, not bind parameters of the driver."""
    url = f"sqlite:///{tmp_path / 'agency.db'}"
    _fill(url, "watchlist", ROWS)
    query = "SELECT * FROM watchlist WHERE surname LIKE 'B%' AND case_id <> ':x'"
    got = load_records(SqlSource(url, query=query), FMT, SPEC)
    assert got.rows_read == 2 and [r.record_id for r in got.records] == ["r1"]


def test_nulls_dates_and_numbers_become_cells(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'typed.db'}"
    engine = sa.create_engine(url)
    meta = sa.MetaData()
    t = sa.Table("p", meta, sa.Column("pid", sa.Integer), sa.Column("given", sa.Text), sa.Column("surname", sa.Text),
                 sa.Column("dob", sa.Date), sa.Column("doc", sa.Text), sa.Column("doc_country", sa.Text),
                 sa.Column("case_id", sa.Text))
    import datetime as dt

    with engine.begin() as conn:
        meta.create_all(conn)
        conn.execute(t.insert(), [{"pid": 7, "given": "Anna", "surname": "Berg", "dob": dt.date(1980, 1, 2),
                                   "doc": None, "doc_country": None, "case_id": "C-7"}])
    engine.dispose()
    with open_rows(SqlSource(url, table="p")) as (header, rows):
        assert header == COLUMNS
        assert list(rows) == [["7", "Anna", "Berg", "1980-01-02", "", "", "C-7"]]
    (rec,) = load_records(SqlSource(url, table="p"), FMT, SPEC).records
    assert rec.record_id == "7" and [k for k, _ in rec.tokens] == ["name_dob"]


def test_unreachable_database_and_missing_table_are_clear_errors_without_the_password(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'agency.db'}"
    _fill(url, "watchlist", ROWS)
    with pytest.raises(InputFileError, match="no table 'nope'"):
        load_records(SqlSource(url, table="nope"), FMT, SPEC)
    with pytest.raises(InputFileError, match="could not be read from the database"):
        load_records(SqlSource(url, query="SELECT * FROM nope"), FMT, SPEC)
    with pytest.raises(InputFileError, match=r"column\(s\) 'pid'"):
        load_records(SqlSource(url, query="SELECT given, surname FROM watchlist"), FMT, SPEC)
    secret = "postgresql+psycopg://agency:s3cret-pw@127.0.0.1:1/records"
    with pytest.raises(InputFileError) as err:
        load_records(SqlSource(secret, table="watchlist"), FMT, SPEC)
    assert "s3cret-pw" not in str(err.value) and "agency:***@127.0.0.1" in str(err.value)
    assert "s3cret-pw" not in repr(SqlSource(secret, table="watchlist"))
    assert mask_password("postgresql://u@h/db?password=pw1&sslmode=require") == \
        "postgresql://u@h/db?password=***&sslmode=require"


def _responder_toml(tmp_path: Path, records: str) -> Path:
    path = tmp_path / "responder.toml"
    path.write_text(f'[responder]\nstate_dir = "state"\n[records]\ndate_order = "DMY"\n{records}\n', encoding="utf-8")
    return path


@pytest.mark.parametrize("records, message", [
    ('source = "sqlite:///a.db"', "exactly one of `query` or `table`"),
    ('source = "sqlite:///a.db"\nquery = "SELECT 1"\ntable = "t"', "exactly one of `query` or `table`"),
    ('source = "sqlite:///a.db"\ntable = "t; DROP TABLE x"', "plain identifier"),
    ('source = "not a url"\ntable = "t"', "is not a database URL"),
    ('table = "t"', "only go(es) with a database `source`"),
])
def test_config_needs_exactly_one_of_query_or_table(tmp_path: Path, records: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_responder_config(_responder_toml(tmp_path, records))


def test_responder_names_its_watchlist_once(tmp_path: Path) -> None:
    path = _responder_toml(tmp_path, 'source = "sqlite:///a.db"\ntable = "t"')
    cfg = load_responder_config(path)
    assert cfg.records.sql_source().url == f"sqlite:///{tmp_path / 'a.db'}"  # relative to the config
    assert cfg.records.rejects == tmp_path / "records.rejects.csv"
    path.write_text(path.read_text().replace("[responder]\n", '[responder]\nwatchlist = "w.csv"\n'))
    with pytest.raises(ConfigError, match="exactly one of them"):
        load_responder_config(path)
    path.write_text('[responder]\n[records]\ndate_order = "DMY"\n')
    with pytest.raises(ConfigError, match="exactly one of them"):
        load_responder_config(path)


def test_audit_config_warns_about_a_password_in_the_url(tmp_path: Path) -> None:
    path = _responder_toml(tmp_path, 'source = "postgresql+psycopg://agency:s3cret-pw@db/records"\ntable = "t"')
    report = audit_config(path)
    assert "database-password-in-config" in report.ids("warning")
    assert "s3cret-pw" not in report.to_text() and "s3cret-pw" not in report.to_json()
    path.write_text(path.read_text().replace("agency:s3cret-pw@", "agency@"))
    assert "database-password-in-config" not in audit_config(path).ids()


# -- both agencies on databases, over a real responder ----------------------------------------


def _csv_into(url: str, table: str, csv_path: Path) -> None:
    with csv_path.open(newline="", encoding="utf-8") as fh:
        header, *rows = list(csv.reader(fh))
    _fill(url, table, rows, header)


def _match_from_databases(agencies, start, responder_url: str) -> tuple[set[str], set[str]]:
    """Hits of the demo with records from CSV, and with both agencies' records from databases."""
    csv_run = None
    running = start()
    port = running.port
    csv_run = run_match(agencies.requester_config(), agencies.workdir / "agency_b_records.csv",
                        f"127.0.0.1:{port}", out=agencies.workdir / "csv_hits.csv")
    running.stop(grace=0)
    _csv_into(responder_url, "watchlist", agencies.workdir / "agency_a_watchlist.csv")
    requester_url = f"sqlite:///{agencies.workdir / 'agency_b.db'}"
    _csv_into(requester_url, "persons", agencies.workdir / "agency_b_records.csv")
    agencies.edit("responder", 'watchlist = "agency_a_watchlist.csv"\n', "")
    agencies.edit("responder", "[records]\n", f'[records]\nsource = "{responder_url}"\ntable = "watchlist"\n')
    agencies.edit("requester", "[records]\n",
                  f'[records]\nsource = "{requester_url}"\nquery = "SELECT * FROM persons ORDER BY person_id"\n')
    running = start()
    db_run = run_match(agencies.requester_config(), None, f"127.0.0.1:{running.port}",
                       out=agencies.workdir / "db_hits.csv")
    assert db_run.loaded.rows_read == csv_run.loaded.rows_read
    return ({(h.record_id, h.case_ref) for h in csv_run.result.hits},
            {(h.record_id, h.case_ref) for h in db_run.result.hits})


def test_both_agencies_match_from_sqlite(agencies, start) -> None:
    from_csv, from_db = _match_from_databases(agencies, start, f"sqlite:///{agencies.workdir / 'agency_a.db'}")
    assert from_db == from_csv and len(from_csv) >= 5


def test_match_without_records_or_source_says_what_to_do(agencies, capsys) -> None:
    with pytest.raises(ConfigError, match=r"pass --records FILE.csv, or read them from a database"):
        run_match(agencies.requester_config(), None, "127.0.0.1:1", out=None)
    from matcher.cli import main

    assert main(["match", "--config", str(agencies.requester_toml), "--peer", "127.0.0.1:1"]) == 2
    assert "no records to match: pass --records FILE.csv" in capsys.readouterr().err


# -- PostgreSQL: a real server ---------------------------------------------------------------


def test_postgres_table_and_query_give_what_the_csv_gives(tmp_path: Path, postgres_url: str) -> None:
    _fill(postgres_url, "watchlist", ROWS)
    _same_as_csv(tmp_path, SqlSource(postgres_url, table="watchlist", batch=2))
    _same_as_csv(tmp_path, SqlSource(postgres_url, query="SELECT * FROM watchlist ORDER BY ctid", batch=3))


def test_postgres_rows_come_through_a_server_side_cursor(postgres_url: str) -> None:
    """While rows are read, the server holds a cursor and the client fetches batch by batch."""
    _fill(postgres_url, "many", [[f"r{i}", "A", "B", "01.01.1980", "", "", "C"] for i in range(50)])
    seen: list[int] = []
    with open_rows(SqlSource(postgres_url, table="many", batch=7)) as (_header, rows):
        first = next(rows)
        observer = sa.create_engine(postgres_url)
        with observer.connect() as conn:
            seen = [r[0] for r in conn.exec_driver_sql(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'FETCH FORWARD %% FROM %%'")]
        observer.dispose()
        assert first[0] == "r0" and len(list(rows)) == 49
    assert seen == [1]


def test_postgres_query_is_sent_as_written(postgres_url: str) -> None:
    _fill(postgres_url, "watchlist", ROWS)
    query = ("SELECT pid, given, surname, dob::text AS dob, case_id FROM watchlist "
             "WHERE surname LIKE 'B%' AND case_id <> ':x'")
    got = load_records(SqlSource(postgres_url, query=query), FMT.__class__(
        columns={k: v for k, v in MAPPING.items() if k not in ("document_number", "document_country")},
        date_order="DMY"), SPEC)
    assert got.rows_read == 2 and [r.record_id for r in got.records] == ["r1"]


def test_postgres_reads_in_a_read_only_transaction(postgres_url: str) -> None:
    _fill(postgres_url, "watchlist", ROWS)
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE SEQUENCE IF NOT EXISTS seen")
    engine.dispose()
    with pytest.raises(InputFileError, match="could not be read"):
        load_records(SqlSource(postgres_url, query="DELETE FROM watchlist RETURNING *"), FMT, SPEC)
    with pytest.raises(InputFileError, match="read-only transaction"):
        load_records(SqlSource(postgres_url, query="SELECT *, nextval('seen') FROM watchlist"), FMT, SPEC)
    assert load_records(SqlSource(postgres_url, table="watchlist"), FMT, SPEC).rows_read == len(ROWS)


def test_postgres_errors_do_not_quote_values(postgres_url: str) -> None:
    _fill(postgres_url, "watchlist", ROWS)
    with pytest.raises(InputFileError, match="invalid input syntax for type date") as err:
        load_records(SqlSource(postgres_url, query="SELECT pid, surname::date AS dob FROM watchlist"), FMT, SPEC)
    assert "Berg" not in str(err.value)


def test_both_agencies_match_from_postgres_and_sqlite(agencies, start, postgres_url: str) -> None:
    from_csv, from_db = _match_from_databases(agencies, start, postgres_url)
    assert from_db == from_csv and len(from_csv) >= 5


def test_loading_is_not_kept_waiting_by_other_threads(tmp_path: Path) -> None:
    """Two loads of one SQLite file at once (a responder reloading while a requester reads) both finish."""
    url = f"sqlite:///{tmp_path / 'agency.db'}"
    _fill(url, "watchlist", ROWS)
    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(
        load_records(SqlSource(url, table="watchlist"), FMT, SPEC).rows_read)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == [len(ROWS), len(ROWS)]


def test_without_postgres_ci_fails_and_elsewhere_skips_with_the_reason(monkeypatch) -> None:
    from tests import pg_server

    monkeypatch.delenv("MATCHER_TEST_POSTGRES_URL", raising=False)
    monkeypatch.setattr(pg_server, "_bin", lambda name: None)
    reason = pg_server.unavailable_reason()
    assert reason and "PostgreSQL is not installed" in reason
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must run the PostgreSQL tests"):
        pg_server.skip_or_fail(reason)
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="PostgreSQL tests skipped: PostgreSQL is not installed"):
        pg_server.skip_or_fail(reason)


def test_a_reload_reads_the_watchlist_from_the_database_again(agencies, start) -> None:
    url = f"sqlite:///{agencies.workdir / 'agency_a.db'}"
    _csv_into(url, "watchlist", agencies.workdir / "agency_a_watchlist.csv")
    agencies.edit("responder", 'watchlist = "agency_a_watchlist.csv"\n', "")
    agencies.edit("responder", "[records]\n", f'[records]\nsource = "{url}"\ntable = "watchlist"\n')
    running = start()

    def hits() -> set[str]:
        run = run_match(agencies.requester_config(), agencies.workdir / "agency_b_records.csv",
                        f"127.0.0.1:{running.port}", out=None)
        return {h.record_id for h in run.result.hits}

    before = hits()
    assert "B-101" in before
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM watchlist WHERE id = 'A-001'")  # B-101's hit
    engine.dispose()
    assert hits() == before  # the served state does not change under the server's feet
    result = running.reload(agencies.responder_toml)
    assert result.ok and "15 rows read" in result.detail
    assert hits() == before - {"B-101"}
