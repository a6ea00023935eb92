"""Match quality per script, per romanisation scheme, per key and per strength cut-off (test data only).

    python bench/quality_n3.py --size 10000 --seeds 1,2,3 --norm n3            # independent romanisers
    python bench/quality_n3.py --size 10000 --seeds 1,2,3 --norm n3 --icu      # ... and ICU's transforms (uconv)
    python bench/quality_n3.py --size 10000 --seeds 1,2,3 --norm n3 --own      # matcher.quality.synth's own data
    python bench/quality_n3.py --size 10000 --seeds 1 --norm n3 --own --closed-pools
    python bench/quality_n3.py --compare n3.json n2.json    # per script and scheme, side by side
    python bench/quality_n3.py --doc-figures DIR            # docs/match-quality.md's figures (see there)

Writes a Markdown report to stdout (and --json to a file): recall and precision per seed, per key
and per strength cut-off, missed links by cause (--by-scheme-causes: per script and scheme too) and,
for third-party data, per script and scheme. Identity data never leaves the temporary folder; the
report holds only counts (--show-misses prints the synthetic rows of missed and false links, for
debugging; --misses-cause TEXT: only the misses of that cause, each with its two rows' n3 fields).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

from matcher.config import load_requester_config, load_responder_config
from matcher.identity.match_keys import DEFAULT_MATCH_KEYS, N3_MATCH_KEYS, KeySpec
from matcher.identity.records import load_records
from matcher.quality.evaluate import evaluate, read_links

_EXTRA_KEYS: dict[str, list[str]] = {}
_KEYS: dict[str, list[str]] = {}


def _spec(norm: str) -> KeySpec:
    keys = _KEYS or (N3_MATCH_KEYS if norm == "n3" else DEFAULT_MATCH_KEYS)
    return KeySpec.from_mapping(norm, keys | _EXTRA_KEYS)


def run(size: int, seed: int, norm: str, own: bool, closed: bool, out: Path, misses: int = 0,
        icu: bool = False, cause_filter: str = "") -> dict:
    if own:
        from matcher.quality.synth import generate

        res = generate(size, 0.2, seed, out, closed_pools=closed)
        schemes_of: dict[str, tuple[str, str]] = {}
    else:
        from matcher.quality.romanisers import generate_independent

        res = generate_independent(size, 0.2, seed, out, icu=icu)
        with (out / "record_schemes.csv").open(encoding="utf-8") as fh:
            schemes_of = {r["record_id"]: (r["script"] + "/" + r["locale"], r["scheme"]) for r in csv.DictReader(fh)}
    spec = _spec(norm)
    req_cfg, resp_cfg = load_requester_config(res.requester_config), load_responder_config(res.responder_config)
    req = load_records(res.requester, req_cfg.records.csv_format(), spec)
    resp = load_records(res.responder, resp_cfg.records.csv_format(), spec)
    links = read_links(res.links)
    ev = evaluate(req.records, resp.records, links, spec)
    by_token: dict[bytes, set[str]] = defaultdict(set)
    for rec in resp.records:
        for _k, t in rec.tokens:
            by_token[t].add(rec.record_id)
    found_by_key: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for rec in req.records:
        for k, t in rec.tokens:
            for other in by_token.get(t, ()):
                found_by_key[k].add((rec.record_id, other))
    cut = []
    acc: set[tuple[str, str]] = set()
    for k in spec.names:  # strength cut-off: keys up to and including k
        acc |= found_by_key[k]
        tp = len(acc & links)
        cut.append({"keys": k, "predicted": len(acc), "precision": tp / len(acc) if acc else 1.0,
                    "recall": tp / len(links)})
    found = acc
    groups: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])  # true links, found, predicted, true pred
    for r, a in links:
        script, scheme = schemes_of.get(a, ("all", "all"))
        for g in (f"script {script}", f"scheme {script} {scheme}", f"requester {schemes_of.get(r, ('', ''))[1]}"):
            groups[g][0] += 1
            groups[g][1] += (r, a) in found
    for r, a in found:
        script, scheme = schemes_of.get(r, ("all", "all"))
        groups[f"script {script}"][2] += 1
        groups[f"script {script}"][3] += (r, a) in links
    missed = sorted(links - found)
    causes = classify_misses(out, missed, schemes_of, show=misses > 0, cause_filter=cause_filter)
    if misses and not cause_filter:  # debugging on synthetic data only: every false link with the keys that made it
        req_rows, resp_rows = _rows(out / "requester.csv"), _rows(out / "responder.csv")
        for r, a in sorted(found - links):
            keys = [k for k in spec.names if (r, a) in found_by_key[k]]
            x, y = req_rows[r], resp_rows[a]
            print("FALSE", keys, "|", *(x[f] for f in _REQ_COLS[:5]), "|", *(y[f] for f in _REQ_COLS[:5]),
                  file=sys.stderr)
    return {
        "causes": causes,
        "seed": seed,
        "overall": {"precision": ev.overall.precision, "recall": ev.overall.recall,
                    "tokens_req": ev.overall.tokens_per_requester_record,
                    "tokens_resp": ev.overall.tokens_per_responder_record, "max_tokens": ev.max_tokens_per_record,
                    "rejected": len(req.rejected) + len(resp.rejected)},
        "keys": [{"key": q.name, "precision": q.precision, "recall": q.recall,
                  "tokens": (q.tokens_per_requester_record + q.tokens_per_responder_record) / 2} for q in ev.keys],
        "cut": cut,
        "groups": {g: v for g, v in sorted(groups.items())},
    }


#: n3 fields printed for each miss with --misses-cause.
_SHOWN_FIELDS = ("name_keys", "name_keys_fine", "name_pairs", "name_initials", "date_of_birth_or_swapped",
                 "year_of_birth", "nationality", "sex")

_REQ_COLS = ("given_names", "family_name", "date_of_birth", "sex", "nationality", "document_number",
             "document_country")


def _rows(path: Path) -> dict[str, dict[str, str]]:
    with path.open(encoding="utf-8") as fh:
        reader = csv.reader(fh)
        next(reader)
        return {r[0]: dict(zip(_REQ_COLS, r[1:8], strict=True)) for r in reader}


def _normalised(raw: dict[str, str], order: str) -> dict:
    """n3's fields of one row; a date that is no calendar date is dropped as the loader does."""
    from matcher.errors import RecordError
    from matcher.identity.normalise_n3 import normalise_record_n3

    raw = dict(raw)
    for _ in range(len(raw)):
        try:
            return normalise_record_n3(raw, order)
        except RecordError as exc:
            if exc.field is None:
                break
            raw[exc.field] = exc.kept if exc.kept != raw[exc.field] else ""  # as the loader does
    return {}


def _date_state(raw: str, norm: dict) -> str:
    if not raw.strip():
        return "missing"
    if norm.get("date_of_birth"):
        return "full"
    return "year only" if norm.get("year_of_birth") and len(raw.strip()) <= 7 else "not a calendar date"


def classify_misses(folder: Path, missed: list[tuple[str, str]],
                    schemes_of: dict[str, tuple[str, str]], show: bool = False,
                    cause_filter: str = "") -> dict[str, int]:
    """Count missed links per observable cause (always from n3's fields, whatever --norm measured), and
    per cause and script/scheme of the responder copy: "cause" and "cause | script scheme" keys.

    Causes, first that applies: a side without a full date (missing / not a calendar date / year
    only) and, for the latter, what else differs; a date that differs (day typed wrong); same date
    but no shared name skeleton, split by how the names differ (columns swapped, a word missing,
    an initial, one word differs in spelling)."""
    req, resp = _rows(folder / "requester.csv"), _rows(folder / "responder.csv")
    out: dict[str, int] = defaultdict(int)
    for r, a in missed:
        x, y = req[r], resp[a]
        nx, ny = _normalised(x, "MDY"), _normalised(y, "DMY")
        if not nx or not ny:
            cause = "row not usable"
        else:
            dx, dy = _date_state(x["date_of_birth"], nx), _date_state(y["date_of_birth"], ny)
            names_fine = bool(set(nx["name_keys_fine"]) & set(ny["name_keys_fine"]))
            nat = bool(set(nx["nationality"]) & set(ny["nationality"]))
            if "missing" in (dx, dy):
                cause = "no date on one side: missing"
            elif "not a calendar date" in (dx, dy):
                cause = "no date on one side: not a calendar date"
            else:
                why = ("names differ (fine skeleton)" if not names_fine else
                       "nationality missing or differs" if not nat else "other")
                if "year only" in (dx, dy):
                    cause = f"year only on one side; {why}"
                elif not set(nx["date_of_birth_or_swapped"]) & set(ny["date_of_birth_or_swapped"]):
                    cause = f"full dates differ (day typed wrong); {why}"
                else:
                    gx = [w for w in nx["name_keys"][0].split()] if nx["name_keys"] else []
                    gy = [w for w in ny["name_keys"][0].split()] if ny["name_keys"] else []
                    init = any(len(v.strip(". ")) == 1 for v in (x["given_names"], y["given_names"]))
                    common = len(set(gx) & set(gy))
                    how = ("a given name written as an initial" if init else
                           "one side has fewer words" if len(gx) != len(gy) else
                           "every word differs" if common == 0 else f"{len(gx) - common} of {len(gx)} words differ")
                    cause = f"same date, names differ: {how}"
        script, scheme = schemes_of.get(a, ("all", "all"))
        if show and cause_filter.lower() in cause.lower():  # debugging on synthetic data only
            print("MISS", cause, "|", schemes_of.get(r, ("", ""))[1], x["given_names"], "/", x["family_name"], "/",
                  x["date_of_birth"], x["nationality"], "|", scheme, y["given_names"], "/", y["family_name"], "/",
                  y["date_of_birth"], y["nationality"], "|", nx.get("name_keys"), ny.get("name_keys"), file=sys.stderr)
            if cause_filter:  # the two normalised rows, field by field
                for f in _SHOWN_FIELDS:
                    print(f"    {f}: {nx.get(f)} | {ny.get(f)}", file=sys.stderr)
        out[cause] += 1
        out[f"{cause} | {script} {scheme}"] += 1
    return dict(out)


def compare(paths: list[Path], labels: list[str] | None = None) -> None:
    """One table per script and scheme from several --json outputs (e.g. n3 and n2 on the same seeds)."""
    runs = [json.loads(p.read_text(encoding="utf-8")) for p in paths]
    names = labels or [p.stem for p in paths]
    groups = sorted({g for run in runs for r in run for g in r["groups"] if not g.startswith("requester")},
                    key=lambda g: (g.split()[1], not g.startswith("script"), g))
    print("| script / scheme (responder copy) | true links | " + " | ".join(f"recall {n}" for n in names)
          + " | " + " | ".join(f"precision {n}" for n in names) + " |")
    print("|---|---:|" + "---:|" * (2 * len(paths)))
    for g in groups:
        sums = [[sum(r["groups"].get(g, [0, 0, 0, 0])[i] for r in run) for i in range(4)] for run in runs]
        recalls = " | ".join(f"{s[1] / s[0]:.3f}" if s[0] else "" for s in sums)
        precs = " | ".join(f"{s[3] / s[2]:.4f}" if g.startswith("script") and s[2] else "" for s in sums)
        name = f"**{g.removeprefix('script ')}**" if g.startswith("script") else g.removeprefix("scheme ")
        print(f"| {name} | {sums[0][0]} | {recalls} | {precs} |")


def mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


def _overall(run: list[dict]) -> str:
    rec = [r["overall"]["recall"] for r in run]
    pre = [r["overall"]["precision"] for r in run]
    seeds = ", ".join(f"{r:.3f}/{p:.3f}" for r, p in zip(rec, pre, strict=True))
    return f"{sum(rec) / len(rec):.4f} / {sum(pre) / len(pre):.4f} ({seeds})"


def _keys_table(run: list[dict]) -> str:
    lines = ["| key (alone) | precision | recall | tokens/record | keys up to here: precision | recall |",
             "|---|---:|---:|---:|---:|---:|"]
    for i, k in enumerate(run[0]["keys"]):
        lines.append(f"| {k['key']} | {mean([r['keys'][i]['precision'] for r in run]):.4f} | "
                     f"{mean([r['keys'][i]['recall'] for r in run]):.4f} | "
                     f"{mean([r['keys'][i]['tokens'] for r in run]):.2f} | "
                     f"{mean([r['cut'][i]['precision'] for r in run]):.4f} | "
                     f"{mean([r['cut'][i]['recall'] for r in run]):.4f} |")
    return "\n".join(lines)


def _causes_table(runs: dict[str, list[dict]]) -> str:
    """Missed links by cause (sums over the seeds), one column per run."""
    totals = {n: sum(len_links(r) for r in run) for n, run in runs.items()}
    sums: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for n, run in runs.items():
        for r in run:
            for c, k in r.get("causes", {}).items():
                if " | " not in c:
                    sums[c][n] += k
    head = " | ".join(f"{n}: missed (share of {totals[n]} links)" for n in runs)
    lines = [f"| cause of the miss (first that applies) | {head} |", "|---|" + "---:|" * len(runs)]
    for c in sorted(sums, key=lambda c: -sum(sums[c].values())):
        cells = " | ".join(f"{sums[c][n]} ({sums[c][n] / totals[n]:.4f})" for n in runs)
        lines.append(f"| {c} | {cells} |")
    cells = " | ".join(f"{sum(sums[c][n] for c in sums)} ({sum(sums[c][n] for c in sums) / totals[n]:.4f})"
                       for n in runs)
    lines.append(f"| **all misses** | {cells} |")
    return "\n".join(lines)


def _causes_by_script(run: list[dict]) -> str:
    """Missed links per script of the responder copy and cause group (sums over the seeds)."""
    groups = ("no date on one side", "year only on one side", "full dates differ", "same date, names differ")
    links: dict[str, int] = defaultdict(int)
    for r in run:
        for g, v in r["groups"].items():
            if g.startswith("script "):
                links[g.removeprefix("script ")] += v[0]
    table: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in run:
        for c, k in r.get("causes", {}).items():
            if " | " in c:
                cause, where = c.split(" | ")
                script = where.split()[0]
                table[script][next(g for g in groups if cause.startswith(g))] += k
    lines = ["| script (responder copy) | true links | " + " | ".join(groups) + " | recall |",
             "|---|---:|" + "---:|" * (len(groups) + 1)]
    for script in sorted(links):
        missed = sum(table[script].values())
        cells = " | ".join(str(table[script][g]) for g in groups)
        lines.append(f"| {script} | {links[script]} | {cells} | {1 - missed / links[script]:.3f} |")
    return "\n".join(lines)


def doc_figures(folder: Path) -> None:
    """The figures of docs/match-quality.md (section n3) from the --json outputs in ``folder``:
    {ind,icu,own,closed}_{n3,n2}.json and tier_{icu,own,closed}.json (see the doc for the commands)."""
    runs = {name: json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))
            for name in ("ind_n3", "ind_n2", "icu_n3", "icu_n2", "own_n3", "own_n2", "closed_n3", "closed_n2",
                         "tier_icu", "tier_own", "tier_closed")}

    def tokens(run: list[dict]) -> str:
        req = sum(r["overall"]["tokens_req"] for r in run) / len(run)
        resp = sum(r["overall"]["tokens_resp"] for r in run) / len(run)
        return f"{req:.2f} / {resp:.2f}, max {max(r['overall']['max_tokens'] for r in run)}"

    print("| data | n3, default n3 keys: recall / precision (per seed) | n2, default keys |")
    print("|---|---|---|")
    for name, label in (("ind", "third-party libraries"), ("icu", "third-party libraries and ICU transforms"),
                        ("own", "own generator, realistic surname frequencies"),
                        ("closed", "own generator, closed pools (stress)")):
        print(f"| {label} | {_overall(runs[name + '_n3'])} | {_overall(runs[name + '_n2'])} |")
    print("| tokens/record (requester / responder), libraries and ICU | "
          f"{tokens(runs['icu_n3'])} | {tokens(runs['icu_n2'])} |")
    print("\n**Missed links by cause**, n3 (sums over the seeds; `bench/quality_n3.py` classifies each missed "
          "link by what its two rows show, first cause that applies):\n")
    print(_causes_table({"libraries": runs["ind_n3"], "libraries and ICU": runs["icu_n3"],
                         "own, realistic": runs["own_n3"]}))
    print("\nThe same misses per script (libraries and ICU, n3; the causes per scheme are printed by "
          "`--by-scheme-causes`):\n")
    print(_causes_by_script(runs["icu_n3"]))
    print("\n**Per script and scheme** (third-party libraries and ICU transforms; sums over the seeds; the "
          "scheme is the responder copy's, \"native\" = left in its script; precision per script counts "
          "predicted links by the requester record's script):\n")
    before = folder / "icu_n3_before.json"  # optional: n3 of an earlier commit on the same data
    if before.exists():
        compare([folder / "icu_n3.json", before, folder / "icu_n2.json"], ["n3", "n3 before", "n2"])
    else:
        compare([folder / "icu_n3.json", folder / "icu_n2.json"], ["n3", "n2"])
    for name, label in (("icu_n3", "Third-party libraries and ICU transforms, n3"),
                        ("own_n3", ("Own generator, realistic surname frequencies "
                                    "(`matcher/quality/synth_surnames.py`), n3")),
                        ("closed_n3", ("Own generator, closed pools (surnames drawn evenly from the short head lists: "
                                       "two Poles share one 1 time in 68 instead of about 1 in 6,000), n3")),
                        ("own_n2", "For comparison, own generator, realistic frequencies, n2")):
        print(f"\n{label}:\n")
        print(_keys_table(runs[name]))
    for name, label in (("tier_icu", "libraries and ICU"), ("tier_own", "own generator, realistic frequencies"),
                        ("tier_closed", "own generator, closed pools")):
        print(f"\nWith a sixth, weakest tier `names_sex_nationality` (no date; not a default key), {label}:\n")
        print(_keys_table(runs[name]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=10000)
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--norm", default="n3", choices=["n2", "n3"])
    ap.add_argument("--own", action="store_true", help="matcher.quality.synth's own generator instead of third-party")
    ap.add_argument("--icu", action="store_true", help="third-party data with ICU's CLDR transforms as schemes too "
                    "(BGN/PCGN, UNGEGN Greek, ICU Arabic; needs uconv from icu-devtools)")
    ap.add_argument("--closed-pools", action="store_true", help="with --own: the closed-pool precision stress test")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--show-misses", type=int, default=0,
                    help="when > 0, print every missed and every false link to stderr (debugging, test data)")
    ap.add_argument("--misses-cause", default="",
                    help="with --show-misses: only the misses whose cause contains this text (e.g. 'initial'), "
                    "each with its two rows' n3 fields (debugging, test data; stderr only)")
    ap.add_argument("--extra-keys", type=json.loads, default={},
                    help='JSON {"name": [fields]} appended to the key set (trying a key out)')
    ap.add_argument("--by-scheme-causes", action="store_true", help="also print each cause per script/scheme")
    ap.add_argument("--keys", type=json.loads, default={},
                    help='JSON {"name": [fields]}: this key set instead of the default one (trying keys out)')
    ap.add_argument("--compare", type=Path, nargs="+", help="print one table from these --json outputs and stop")
    ap.add_argument("--doc-figures", type=Path, help="folder with the --json outputs named in docs/match-quality.md: "
                    "print the figures of its section n3 and stop")
    args = ap.parse_args()
    if args.doc_figures:
        doc_figures(args.doc_figures)
        return 0
    if args.compare:
        compare(args.compare)
        return 0
    _EXTRA_KEYS.update(args.extra_keys)
    _KEYS.update(args.keys)
    results = []
    for seed in (int(s) for s in args.seeds.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            r = run(args.size, seed, args.norm, args.own, args.closed_pools, Path(tmp), args.show_misses, args.icu,
                    args.misses_cause)
        results.append(r)
        o = r["overall"]
        print(f"seed {seed}: recall {o['recall']:.4f} precision {o['precision']:.4f} tokens/record "
              f"{o['tokens_req']:.2f}/{o['tokens_resp']:.2f} max {o['max_tokens']} rejected {o['rejected']}",
              file=sys.stderr)
    _report(results, args)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1), encoding="utf-8")
    return 0


def len_links(r: dict) -> int:
    return sum(v[0] for g, v in r["groups"].items() if g.startswith("script "))


def _report(results: list[dict], args: argparse.Namespace) -> None:
    n = len(results)
    src = "own generator" + (" (closed pools)" if args.closed_pools else "") if args.own else "third-party romanisers"
    print(f"### {args.norm}, {src}, {args.size} x {args.size}, seeds {args.seeds}\n")
    o = [r["overall"] for r in results]
    print("| seed | recall | precision | tokens/record (req / resp) | max tokens | rejected rows |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in results:
        x = r["overall"]
        print(f"| {r['seed']} | {x['recall']:.4f} | {x['precision']:.4f} | {x['tokens_req']:.2f} / "
              f"{x['tokens_resp']:.2f} | {x['max_tokens']} | {x['rejected']} |")
    print(f"| mean | {mean([x['recall'] for x in o]):.4f} | {mean([x['precision'] for x in o]):.4f} | "
          f"{mean([x['tokens_req'] for x in o]):.2f} / {mean([x['tokens_resp'] for x in o]):.2f} | "
          f"{max(x['max_tokens'] for x in o)} | |\n")
    print("| key (alone) | precision | recall | tokens/record | keys up to here: precision | recall |")
    print("|---|---:|---:|---:|---:|---:|")
    for i, k in enumerate(results[0]["keys"]):
        p = mean([r["keys"][i]["precision"] for r in results])
        rc = mean([r["keys"][i]["recall"] for r in results])
        t = mean([r["keys"][i]["tokens"] for r in results])
        cp = mean([r["cut"][i]["precision"] for r in results])
        cr = mean([r["cut"][i]["recall"] for r in results])
        print(f"| {k['key']} | {p:.4f} | {rc:.4f} | {t:.2f} | {cp:.4f} | {cr:.4f} |")
    causes: dict[str, int] = defaultdict(int)
    for r in results:
        for c, k in r.get("causes", {}).items():
            causes[c] += k
    total_links = round(sum(len_links(r) for r in results))
    print(f"\n| missed links by cause (sum over {n} seeds; of {total_links} true links) | missed | share of links |")
    print("|---|---:|---:|")
    for c, k in sorted(causes.items(), key=lambda x: -x[1]):
        if " | " not in c:
            print(f"| {c} | {k} | {k / total_links:.4f} |")
    if args.by_scheme_causes:
        for c, k in sorted(causes.items(), key=lambda x: (x[0].split(" | ")[0], -x[1])):
            if " | " in c:
                print(f"|   {c} | {k} | |")
    if args.own:
        return
    print("\n| script / scheme (responder copy) | true links | recall | precision |")
    print("|---|---:|---:|---:|")
    keys = sorted({g for r in results for g in r["groups"]})
    for g in keys:
        if g.startswith("requester"):
            continue
        tl = sum(r["groups"].get(g, [0, 0, 0, 0])[0] for r in results)
        fd = sum(r["groups"].get(g, [0, 0, 0, 0])[1] for r in results)
        pr = sum(r["groups"].get(g, [0, 0, 0, 0])[2] for r in results)
        tp = sum(r["groups"].get(g, [0, 0, 0, 0])[3] for r in results)
        prec = f"{tp / pr:.4f}" if g.startswith("script") and pr else ""
        print(f"| {g} | {tl} | {fd / tl if tl else 1:.4f} | {prec} |")
    print(f"\n(sums over {n} seeds; precision per script counts predicted links by the requester record's script)")


if __name__ == "__main__":
    raise SystemExit(main())
