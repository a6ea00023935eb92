"""Trial and test-data commands: ``demo``, ``dev-certs``, ``synth``, ``evaluate``."""

from __future__ import annotations

import argparse


def cmd_demo(args: argparse.Namespace) -> int:
    from matcher.demo import run_demo

    run_demo(args.dir)
    return 0


def cmd_dev_certs(args: argparse.Namespace) -> int:
    from matcher.certs import write_agency_certs

    made = write_agency_certs(args.out, args.names, force=args.force, days=args.days)
    print(f"CA: {made.ca_cert} ({'kept' if made.ca_kept else 'new'}; key {made.ca_key}, 0600, keep it to add "
          f"agencies later), valid until {made.ca_valid_until:%Y-%m-%d}")
    for name, (cert, key) in made.certs.items():
        print(f"{name}: {cert} {key} (valid until {made.valid_until:%Y-%m-%d %H:%M} UTC)")
    print(f"Agency certificates are issued for {args.days} days (never beyond the CA's end); run dev-certs again "
          "with --force and the names to renew them.")
    print("These are for trials only; in production use your agencies' own PKI.")
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    from matcher.quality.synth import generate

    if args.romanisers == "third-party":
        from matcher.quality.romanisers import generate_independent

        ind = generate_independent(args.size, args.overlap, args.seed, args.out, responder_size=args.responder_size)
        print(f"wrote {ind.requester}, {ind.responder}, {ind.links} ({ind.shared} shared persons), "
              f"{ind.link_schemes} and the configs {ind.requester_config}, {ind.responder_config}")
        return 0
    res = generate(args.size, args.overlap, args.seed, args.out, responder_size=args.responder_size,
                   closed_pools=args.closed_name_pools)
    print(f"wrote {res.requester}, {res.responder}, {res.links} ({res.shared} shared persons) "
          f"and the configs {res.requester_config}, {res.responder_config}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from matcher.config import load_requester_config, load_responder_config
    from matcher.errors import ConfigError
    from matcher.identity.records import load_records
    from matcher.quality.evaluate import evaluate, read_links

    req_cfg = load_requester_config(args.config)
    spec = req_cfg.key_spec()
    resp_format = req_cfg.records.csv_format()
    if args.responder_config:
        resp_cfg = load_responder_config(args.responder_config)
        if resp_cfg.key_spec().fingerprint() != spec.fingerprint():
            raise ConfigError("the two configs' match keys differ (fingerprints differ): a session would be refused")
        resp_format = resp_cfg.records.csv_format()
    req = load_records(args.requester, req_cfg.records.csv_format(), spec)
    resp = load_records(args.responder, resp_format, spec)
    result = evaluate(req.records, resp.records, read_links(args.links), spec)
    print(f"key spec {spec.fingerprint()[:16]}... (normalisation {spec.norm_version})\n")
    print(result.table())
    print()
    for side, loaded in (("requester", req), ("responder", resp)):
        print(f"{side}: {loaded.summary()}")
        for reason, count in loaded.reasons():
            print(f"{count:>6}  {reason}")
    warnings = [f"warning: key {u.split(' needs ')[0]} cannot be computed from the {side} file (it {u.split(' ', 1)[1]}"
                f"; map the column under [records.columns] or drop the key): its precision 1.0 and recall 0 mean "
                "nothing" for side, loaded in (("requester", req), ("responder", resp)) for u in loaded.unusable_keys]
    for q in result.keys:
        one_side_empty = q.tokens_per_requester_record == 0 or q.tokens_per_responder_record == 0
        if one_side_empty and not any(f"key {q.name} " in w for w in warnings):
            warnings.append(f"warning: key {q.name}: no record of one file yields it; its precision and recall "
                            "say nothing about it")
    if warnings:
        print()
        for w in warnings:
            print(w)
    return 0
