"""The per-row shortcuts of the records load give exactly what the plain definitions give.

The load skips work for empty cells (left out of the raw record, fields absent until a value
fills them), for keys whose first field is absent, and for one-valued keys, reads an
all-letters-and-digits document number's check digit from one translated byte string, applies
a key field's transforms through one function made per key spec, and keeps each date of birth's
result. Each
test here compares one shortcut with its plain definition on random input, so a shortcut that
changes a token, a field or an error fails here even where no conformance vector reaches.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matcher.errors import RecordError
from matcher.identity.match_keys import (
    DEFAULT_MATCH_KEYS,
    FIELD_SEPARATOR,
    MAX_ALTERNATIVES_PER_KEY,
    N3_MATCH_KEYS,
    TOKEN_PREFIX,
    TRANSFORMS,
    KeySpec,
    _alternatives,
    _converter,
    _transformed,
    parse_field,
)
from matcher.identity.normalise_n1 import normalise_date, normalise_document, normalise_sex
from matcher.identity.normalise_n2 import (
    dob_or_swapped,
    document_forms,
    family_forms,
    given_forms,
    icao_check_digit,
    name_forms,
    name_token_forms,
    normalise_country_n2,
    normalise_date_n2,
    normalise_record_n2,
)
from matcher.identity.normalise_n3 import normalise_record_n3

FIELDS = ("given_names", "family_name", "date_of_birth", "sex", "nationality", "document_number",
          "document_country", "place_of_birth")


def document_forms_plain(text: str) -> tuple[str, ...]:
    """document_forms by its definition: v1 folding, then the ICAO check digit of all but the last."""
    doc = normalise_document(text.replace("<", ""))
    if not doc:
        return ()
    if len(doc) >= 6 and doc[-1].isdigit() and icao_check_digit(doc[:-1]) == doc[-1]:
        return (doc, doc[:-1])
    return (doc,)


@settings(max_examples=3000, deadline=None)
@given(st.one_of(
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=0, max_size=14),
    st.text(alphabet="AZaz09<- .é٣Ж", max_size=14),
))
def test_document_forms_agree_with_the_check_digit_function(text: str) -> None:
    assert document_forms(text) == document_forms_plain(text)


def test_document_forms_of_valid_and_invalid_check_digits() -> None:
    # L898902C3 is the ICAO 9303 specimen passport; every other last digit is not its check digit
    assert document_forms("L898902C3") == ("L898902C3", "L898902C")
    for d in "012456789":
        assert document_forms("L898902C" + d) == ("L898902C" + d,)
    assert document_forms("l898902c<3") == ("L898902C3", "L898902C")


def normalise_record_n2_plain(raw: dict[str, str | None], date_order: str) -> dict[str, tuple[str, ...]]:
    """normalise_record_n2 written as one dict of every field, each from its (stripped) cell."""
    def get(name: str) -> str:
        return (raw.get(name) or "").strip()

    given_raw, family_raw, dob_raw = get("given_names"), get("family_name"), get("date_of_birth")
    nat_raw, doc_raw, doc_country_raw = get("nationality"), get("document_number"), get("document_country")
    sex_raw, place_raw = get("sex"), get("place_of_birth")
    given_ = given_forms(given_raw) if given_raw else ()
    dob, year = normalise_date_n2(dob_raw, date_order) if dob_raw else ("", "")
    sex = normalise_sex(sex_raw) if sex_raw else ""
    return {
        "given_names": given_,
        "family_name": family_forms(family_raw) if family_raw else (),
        "name_tokens": name_token_forms(given_raw, family_raw) if given_raw or family_raw else (),
        "given_initial": (given_[0][:1],) if given_ and given_[0][:1] else (),
        "date_of_birth": (dob,) if dob else (),
        "date_of_birth_or_swapped": dob_or_swapped(dob) if dob else (),
        "year_of_birth": (year,) if year else (),
        "sex": (sex,) if sex else (),
        "nationality": (normalise_country_n2(nat_raw, "nationality"),) if nat_raw else (),
        "document_number": document_forms(doc_raw) if doc_raw else (),
        "document_country": (normalise_country_n2(doc_country_raw, "document_country"),) if doc_country_raw else (),
        "place_of_birth": name_forms(place_raw)[:1] if place_raw else (),
    }


# cells as files have them: empty, blank, good values and values that cannot be understood
CELLS = {
    "given_names": ["", "  ", "Anna", " Сергей ", "J.", "-"],
    "family_name": ["", "van der Berg", "Müller", "Иванов", "'"],
    "date_of_birth": ["", " ", "1980-04-03", "03/04/1980", "1985", "04/1985", "31/02/1980", "soon"],
    "sex": ["", "m", "weiblich", "u", "?"],
    "nationality": ["", "DEU", "Deutschland", "German", "Atlantis"],
    "document_number": ["", "L898902C3", "ab 12-34.5", "<<<", "X1234567"],
    "document_country": ["", "D", "ESP", "nowhere"],
    "place_of_birth": ["", "Köln", "—"],
}


def outcome(normalise, raw, date_order):  # the record, or the error's field and message
    try:
        record = normalise(raw, date_order)
    except RecordError as exc:
        return ("error", exc.field, str(exc), exc.kept)
    return ("record", list(record.items()))


@settings(max_examples=1500, deadline=None)
@given(st.fixed_dictionaries({f: st.sampled_from(CELLS[f]) for f in FIELDS}), st.sampled_from(["DMY", "MDY"]))
def test_normalise_record_n2_is_its_plain_definition_and_a_missing_cell_is_an_empty_one(raw, date_order) -> None:
    expected = outcome(normalise_record_n2_plain, raw, date_order)
    assert outcome(normalise_record_n2, raw, date_order) == expected  # same fields, same order, same error
    sparse = {f: v for f, v in raw.items() if v}  # as the load passes a row: empty cells left out
    assert outcome(normalise_record_n2, sparse, date_order) == expected
    assert outcome(normalise_record_n2, {f: v or None for f, v in raw.items()}, date_order) == expected
    assert outcome(normalise_record_n3, sparse, date_order) == outcome(normalise_record_n3, raw, date_order)


@settings(max_examples=500, deadline=None)
@given(st.fixed_dictionaries({}, optional={f: st.sampled_from(CELLS[f]) for f in FIELDS}),
       st.sampled_from(["DMY", "MDY"]))
def test_a_row_without_some_fields_normalises_as_its_plain_definition(raw, date_order) -> None:
    # cells left out, as the load passes a sparse row (a document-only row has no field about the person)
    assert outcome(normalise_record_n2, raw, date_order) == outcome(normalise_record_n2_plain, raw, date_order)


def alternatives_plain(record, spec: str) -> tuple[str, ...]:
    """A key field's distinct non-empty values after its transforms, primary first."""
    transforms, field = parse_field(spec)
    raw = record.get(field, ())
    values = (raw,) if isinstance(raw, str) else tuple(raw)
    return tuple(v for v in dict.fromkeys(_transformed(transforms, field, v) for v in values if v) if v)


def tokens_plain(keyspec: KeySpec, record) -> tuple[tuple[str, bytes], ...]:
    """KeySpec.tokens by its definition, for specs without a per-record cap: every combination of
    the fields' alternatives, at most MAX_ALTERNATIVES_PER_KEY per key; none if a field has none."""
    out = []
    for key in keyspec.keys:
        per_field = [alternatives_plain(record, spec) for spec in key.fields]
        if all(per_field):
            head = TOKEN_PREFIX + keyspec.norm_version + "/" + key.name + "/"
            for combo in itertools.islice(itertools.product(*per_field), MAX_ALTERNATIVES_PER_KEY):
                out.append((key.name, (head + FIELD_SEPARATOR.join(combo)).encode("utf-8")))
    return tuple(out)


VALUES = st.sampled_from(["", "ivanov", "iwanow", "anna maria", "1980-04-03", "1980", "DEU", "L898902C3", "ß"])
N2_FIELDS = ("given_names", "family_name", "name_tokens", "given_initial", "date_of_birth",
             "date_of_birth_or_swapped", "year_of_birth", "sex", "nationality", "document_number",
             "document_country", "place_of_birth")
SPECS = [
    KeySpec.from_mapping("n2", DEFAULT_MATCH_KEYS),
    KeySpec.from_mapping("n2", {"a": ["document_number", "document_country"], "b": ["sex"],
                                "c": ["year(date_of_birth)", "given_names"], "d": ["nationality", "name_tokens"]}),
]


@settings(max_examples=2000, deadline=None)
@given(
    st.fixed_dictionaries({}, optional={
        f: st.one_of(VALUES, st.lists(VALUES, max_size=3).map(tuple)) for f in N2_FIELDS
    }),
    st.sampled_from(SPECS),
)
def test_tokens_shortcuts_give_the_tokens_of_the_plain_definition(record, keyspec) -> None:
    # fields missing, empty, "" as the only alternative, one value (n1 text or a 1-tuple), several
    assert keyspec.tokens(record) == tokens_plain(keyspec, record)


def test_n3_tokens_of_a_document_only_record() -> None:
    n3 = KeySpec.from_mapping("n3", N3_MATCH_KEYS)
    record = normalise_record_n3({"document_number": "L898902C3", "document_country": "D"}, "DMY")
    head = b"matcher/v1/n3/document/"
    assert n3.tokens(record) == (("document", head + b"L898902C3\x1fDEU"), ("document", head + b"L898902C\x1fDEU"))


def result_of(fn, *args):  # the value, or the exception's type and message
    try:
        return ("value", fn(*args))
    except Exception as exc:  # noqa: BLE001 - compared, not handled
        return ("error", type(exc), str(exc), getattr(exc, "field", None))


TRANSFORM_CHAINS = st.lists(st.sampled_from(sorted(TRANSFORMS)), min_size=0, max_size=3).map(tuple)
KEY_FIELD_NAMES = st.sampled_from(["name_tokens", "family_name", "given_names", "date_of_birth", "nationality"])
WORDS = st.text(alphabet="abchjkostuvwyz019- ", max_size=20)


@settings(max_examples=3000, deadline=None)
@given(TRANSFORM_CHAINS, KEY_FIELD_NAMES, WORDS)
def test_a_fields_converter_is_its_transforms_applied_one_by_one(transforms, field, value) -> None:
    convert = _converter(transforms, field)
    if not transforms:
        assert convert is None
    else:  # same value, or the same error ("first" of a blank value)
        assert result_of(convert, value) == result_of(_transformed, transforms, field, value)


@settings(max_examples=3000, deadline=None)
@given(TRANSFORM_CHAINS, KEY_FIELD_NAMES, st.one_of(
    st.sampled_from(["", "ivanov", "anna maria"]),  # one value as text (n1), or a list or tuple of alternatives
    st.lists(st.sampled_from(["", "ivanov", "iwanow", "anna maria", "zoe abel", "1980-04-03", "w"]), max_size=4)
    .flatmap(lambda v: st.sampled_from([v, tuple(v)])),
))
def test_alternatives_through_the_converter_are_the_plain_definition(transforms, field, raw) -> None:
    values = (raw,) if isinstance(raw, str) else tuple(raw)
    expected = tuple(v for v in dict.fromkeys(_transformed(transforms, field, v) for v in values if v) if v)
    assert _alternatives(_converter(transforms, field), raw) == expected


DATES = st.one_of(
    st.sampled_from(["1980-04-03", " 03/04/1980 ", "1985", "04/1985", "1985-13", "31/02/1980", "13/13/1980",
                     "12/31/1980", "19800403", "80-04-03", "03.04.80", "1850", "soon", "", "2999-01-01"]),
    st.text(alphabet="0123456789/.- ", max_size=12),
)


@settings(max_examples=3000, deadline=None)
@given(DATES, st.sampled_from(["DMY", "MDY", "YMD"]), st.sampled_from(["date_of_birth", "dob"]))
def test_kept_dates_of_birth_give_what_the_function_gives_each_time(text, order, field) -> None:
    expected = result_of(normalise_date_n2.__wrapped__, text, order, field)
    assert result_of(normalise_date_n2, text, order, field) == expected
    assert result_of(normalise_date_n2, text, order, field) == expected  # from the cache, or raised again


def test_the_date_cache_is_bounded() -> None:
    assert normalise_date_n2.cache_info().maxsize == 1 << 15


@pytest.mark.parametrize(("text", "order"), [("soon", "DMY"), ("1980/04/03/01", "MDY"), ("123/04/1980", "DMY"),
                                             ("03/04/80000", "MDY"), ("1980-04-003", "YMD"), ("03/04/1980", "YMD")])
def test_a_value_that_is_no_date_names_the_order_and_an_example(text, order) -> None:
    example = {"DMY": "31/12/1980", "MDY": "12/31/1980", "YMD": "1980/12/31"}[order]
    with pytest.raises(RecordError) as err:
        normalise_date(text, order, "dob")
    assert str(err.value) == f"dob is not a valid date in {order} order (expected e.g. {example} or 1980-12-31)"
    assert err.value.field == "dob"
