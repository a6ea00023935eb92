"""The two agencies' config templates (demo, synth, benchmarks), rendered from one source.

The match keys, the normalisation version and the responder's limits come from where
the config models take their defaults (``matcher.identity.match_keys`` and
``matcher.config``), so the demo, ``matcher synth``, the benchmarks and the README
(checked by tests/test_defaults.py) can never disagree with them.
"""

from __future__ import annotations

from matcher.config import ResponderSettings
from matcher.identity.match_keys import DEFAULT_NORM_VERSION, match_keys_toml

_RESPONDER = """\
# Agency A: the responder. It serves its watchlist; requesters learn only their own hits.
norm_version = "{norm_version}"                # normalisation rules (part of every token): n2 = transliteration
                                   # schemes, particles, nicknames, partial dates, alternatives
[responder]
listen = "127.0.0.1:0"             # 0 = any free port (the demo); e.g. "0.0.0.0:50051" in production
watchlist = "agency_a_watchlist.csv"
state_dir = "agency_a_state"       # epoch key (0600)
session_log = "agency_a_state/sessions.db"  # hash-chained log of every session
session_log_retention_days = 365
protocols = ["ecdh"]
reveal = "requester"               # the requester learns its hits and their case references
key_rotation_days = {key_rotation_days:g}
max_request_size = {max_request_size}
max_chunk_elements = {max_chunk_elements}

[tls]
cert = "certs/agency-a.pem"
key = "certs/agency-a.key"
ca = "certs/ca.pem"                # CA that signs the requester agencies' certificates

[[peers]]
name = "agency-b"
common_name = "agency-b"           # subject CN of agency B's client certificate
daily_budget = 100000              # most tokens agency B may send per UTC day
max_set_size = 50000               # most tokens in one session

[records]
date_order = "DMY"                 # 12.03.1979 is 12 March 1979
[records.columns]                  # record field = column in the CSV
record_id = "id"
given_names = "first_name"
family_name = "last_name"
date_of_birth = "dob"
sex = "sex"
nationality = "nationality"
document_number = "doc_no"
document_country = "doc_country"
case_ref = "case_id"

[match_keys]                       # strongest first; must be identical at both agencies
{match_keys}"""

_REQUESTER = """\
# Agency B: the requester.
norm_version = "{norm_version}"
[requester]
protocol = "ecdh"
reveal = "requester"
server_name = "agency-a"           # name in the responder's certificate

[tls]
cert = "certs/agency-b.pem"
key = "certs/agency-b.key"
ca = "certs/ca.pem"                # CA that signs the responder's certificate

[records]
date_order = "MDY"                 # 03/12/1979 is 12 March 1979
[records.columns]
record_id = "person_id"
given_names = "given"
family_name = "surname"
date_of_birth = "birth_date"
sex = "gender"
nationality = "citizenship"
document_number = "passport"
document_country = "passport_country"

[match_keys]                       # strongest first; must be identical at both agencies
{match_keys}"""

_DEFAULTS = {
    "norm_version": DEFAULT_NORM_VERSION,
    "match_keys": match_keys_toml(),
    **{name: ResponderSettings.model_fields[name].default
       for name in ("key_rotation_days", "max_request_size", "max_chunk_elements")},
}
RESPONDER_TOML = _RESPONDER.format(**_DEFAULTS)
REQUESTER_TOML = _REQUESTER.format(**_DEFAULTS)
