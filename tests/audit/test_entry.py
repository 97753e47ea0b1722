"""Audit entries: RFC 8785 encoding, the wire format, and refusing raw secrets."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from gateway.audit import jcs
from gateway.audit.entry import (
    _ANY_SECRET,
    _SECRETS,
    CLIPPED,
    MAX_TEXT,
    REDACTED,
    Actor,
    AuditEntry,
    DecisionRecord,
    check_no_secrets,
    clip,
    decode_entry,
    encode_entry,
    escape_unencodable,
    format_time,
    hash_token,
    nothing_to_fix,
    redact_secrets,
    unescape,
)
from gateway.audit.errors import EntryError
from gateway.audit.jcs import canonical, loads

NOW = datetime(2026, 11, 27, 9, 30, 1, 250000, tzinfo=UTC)
NOW_TEXT = "2026-11-27T09:30:01.250000Z"
JWT = "eyJhbGciOiJFZERTQSIsInR5cCI6ImF0K2p3dCJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"


def entry(**fields: Any) -> AuditEntry:
    base: dict[str, Any] = {"time": NOW, "event": "access-decision"}
    return AuditEntry(**(base | fields))


def test_rfc8785_known_answers() -> None:
    # RFC 8785 §3.2.2 string escaping, and §3.2.3 sorting by UTF-16 code units.
    assert canonical('\u20ac$\u000f\nA\'B"\\\\"/') == '"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"'.encode()
    assert canonical({"\U0001f600": 1, "\ufb33": 2, "a": 3}) == (
        '{"a":3,"\U0001f600":1,"\ufb33":2}'.encode()
    )
    assert canonical({"b": [True, None, -0, 2**53 - 1], "a": {}}) == (
        b'{"a":{},"b":[true,null,0,9007199254740991]}'
    )


@pytest.mark.parametrize("bad", [1.5, 2**53, -(2**53), b"x", {1: 2}, "\ud800", {"k": object()}])
def test_values_outside_the_subset_are_refused(bad: Any) -> None:
    with pytest.raises(EntryError) as caught:
        canonical(bad)
    assert caught.value.code == "not-canonical"


@pytest.mark.parametrize(
    ("bad", "detail"),
    [
        ("\ud800", "a string holds a lone surrogate"),
        ({"\ud800": 1}, "a key holds a lone surrogate"),
        ({1: 2}, "object keys must be strings"),
        (b"x", "bytes is not part of the subset"),
        (2**53, "integer 9007199254740992 beyond 2**53"),
    ],
)
def test_each_canonical_refusal_says_why(bad: Any, detail: str) -> None:
    with pytest.raises(EntryError) as caught:
        canonical(bad)
    assert (caught.value.code, caught.value.detail) == ("not-canonical", detail)


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ('{"a":1.0}', "number 1.0 is not an integer"),
        ('{"a":1,"a":2}', "duplicate key 'a'"),
        ("[NaN]", "number NaN is not an integer"),
        ("{", "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)"),
    ],
)
def test_strict_parsing(text: str, detail: str) -> None:
    with pytest.raises(EntryError) as caught:
        loads(text)
    assert (caught.value.code, caught.value.detail) == (
        "not-canonical",
        f"not strict JSON: {detail}",
    )


def test_the_largest_safe_integers_are_written_by_both_encoders() -> None:
    assert jcs._fast({"a": 2**53 - 1, "b": -(2**53 - 1)}) == (
        b'{"a":9007199254740991,"b":-9007199254740991}'
    )
    assert jcs._fast({"a": 2**53}) is None
    assert _exact({"a": 2**53 - 1, "b": -(2**53 - 1)}) == (
        b'{"a":9007199254740991,"b":-9007199254740991}'
    )


def test_the_exact_encoder_escapes_c0_controls_only() -> None:
    """U+001F is the last control written as ``\\u00xx``; space and DEL are kept as they are
    (a key from U+E000 up sends the value to the exact encoder)."""
    assert canonical({"\ue000": "\x00\x1f \x7f"}) == '{"\ue000":"\\u0000\\u001f \x7f"}'.encode()


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def _exact(value: Any) -> bytes:
    """The exact (slow) RFC 8785 encoder alone: the reference the fast path must equal."""
    parts: list[str] = []
    jcs._encode(value, parts)
    return "".join(parts).encode("utf-8")


ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=6)
ODD = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**54), 2**54) | st.floats() | ANY_TEXT,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.tuples(inner)
        | st.dictionaries(ANY_TEXT | st.integers(0, 3), inner, max_size=3)
    ),
    max_leaves=12,
)


@given(ODD)
def test_the_fast_path_writes_exactly_what_rfc_8785_does(value: Any) -> None:
    """json's C encoder is taken only where its bytes are RFC 8785's; everything else
    (floats, big integers, keys that are not text, lone surrogates, keys sorted
    differently by code point) is written or refused by the exact encoder."""
    try:
        expected: bytes | None = _exact(value)
    except (EntryError, UnicodeEncodeError):
        expected = None
    fast = jcs._fast(value)
    assert fast is None or fast == expected
    if expected is None:
        with pytest.raises(EntryError):
            canonical(value)
    else:
        assert canonical(value) == expected


def test_the_fast_path_is_taken_for_an_entry() -> None:
    data = json.loads(encode_entry(entry(dataset="d", rows=3)))
    assert jcs._fast(data) == _exact(data)


def test_the_fast_path_takes_every_plain_value() -> None:
    """Null, booleans and keys below U+E000 (ASCII or not) are plain: json writes them."""
    assert jcs._fast({"a": [None, True, False, -1, "x"]}) == b'{"a":[null,true,false,-1,"x"]}'
    assert jcs._fast({"\u00e9": 1, "\u4e2d": 2}) == '{"\u00e9":1,"\u4e2d":2}'.encode()


def test_an_entry_with_nothing_to_fix_is_not_walked(monkeypatch: pytest.MonkeyPatch) -> None:
    """The walks run only for an entry whose strings need escaping or redaction."""

    def walked(_data: dict[str, Any]) -> dict[str, Any]:
        raise AssertionError("walked")

    monkeypatch.setattr("gateway.audit.entry.escape_unencodable", walked)
    assert encode_entry(entry(dataset="plain", rows=3)) == _walked(entry(dataset="plain", rows=3))
    with pytest.raises(AssertionError, match="walked"):
        encode_entry(entry(dataset=JWT))


def test_a_lookalike_redaction_left_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """The last guard: were redaction ever to leave a lookalike, the entry is refused."""
    monkeypatch.setattr("gateway.audit.entry.redact_secrets", lambda data: data)
    with pytest.raises(EntryError) as caught:
        encode_entry(entry(dataset=JWT))
    assert caught.value.code == "secret-in-entry"


def test_to_json_gives_json_values() -> None:
    """Lists, not tuples, and text, not datetimes: what json writes and reads back as it is
    (and what the fast path takes)."""
    data = entry(decision=DecisionRecord(result="deny", reasons=("a", "b"))).to_json()
    assert data == json.loads(json.dumps(data))
    assert data["decision"] == {"result": "deny", "reasons": ["a", "b"]}
    assert jcs._fast(data) is not None


@pytest.mark.parametrize(
    "value",
    [{1: 2}, {"a": 1.0}, {"a": 2**53}, {"\ue000": 1, "\U0001f600": 2}, ("a",), {"a": "\ud800"}],
)
def test_the_fast_path_declines_what_json_writes_differently(value: Any) -> None:
    assert jcs._fast(value) is None


@given(JSON)
def test_canonical_round_trips(value: Any) -> None:
    data = canonical(value)
    assert canonical(loads(data)) == data
    assert json.loads(data) == value


def test_entry_wire_format_is_stable() -> None:
    full = entry(
        actor=Actor(participant="NTRNL-12345678", client="c1", certificate="abc", source="::1"),
        dataset="sales",
        action="read",
        purpose="research",
        decision=DecisionRecord(
            result="deny", policy_id="p1", policy_hash="sha256:00", reasons=("too late",)
        ),
        request_id="r1",
        trace_id="t1",
        rows=0,
        bytes=0,
        token_sha256=hash_token("opaque"),
    )
    data = encode_entry(full)
    assert data.startswith(b'{"action":"read","actor":{"certificate":"abc","client":"c1",')
    assert b'"time":"2026-11-27T09:30:01.250000Z","token_sha256":"' in data
    assert data.endswith(b',"trace_id":"t1","version":1}')
    assert decode_entry(data) == full
    assert encode_entry(entry()) == (
        b'{"actor":{},"event":"access-decision","time":"2026-11-27T09:30:01.250000Z","version":1}'
    )


def test_times_are_utc_and_aware() -> None:
    local = NOW.astimezone(timezone(timedelta(hours=2)))
    assert encode_entry(entry(time=local)) == encode_entry(entry())
    with pytest.raises(ValidationError):
        entry(time=NOW.replace(tzinfo=None))


def test_times_are_utc_whatever_the_hosts_time_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Kathmandu")
    time.tzset()
    try:
        assert format_time(NOW) == NOW_TEXT
        assert format_time(NOW.astimezone(timezone(timedelta(hours=2)))) == NOW_TEXT
        stored = entry(time=NOW.astimezone(timezone(timedelta(hours=2)))).time
        assert (stored, stored.utcoffset()) == (NOW, timedelta(0))  # not the host's zone
    finally:
        monkeypatch.undo()
        time.tzset()


def test_hash_token_is_sha256_base64url() -> None:
    assert hash_token("abc") == "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0"
    assert JWT not in hash_token(JWT)
    with pytest.raises(ValidationError):
        entry(token_sha256=JWT)


@pytest.mark.parametrize(
    "fields",
    [
        {"purpose": JWT},
        {"decision": DecisionRecord(result="deny", reasons=(f"bad token {JWT}",))},
        {"actor": Actor(client="Bearer abcdefghijklmnopqrstuvwxyz012345")},
        {"target": "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI"},
        {"target": "PRIVATE+KEY+sluis.example/audit+01234567+AQ"},
    ],
)
def test_a_raw_secret_is_redacted_and_the_entry_still_written(fields: dict[str, Any]) -> None:
    data = encode_entry(entry(**fields))
    assert JWT.encode() not in data
    assert JWT.rsplit(".", 1)[1].encode() not in data  # nor its signature alone
    for secret in (b"Bearer abcdef", b"BEGIN PRIVATE KEY", b"PRIVATE+KEY+"):
        assert secret not in data
    decoded = decode_entry(data)
    assert decoded.redacted
    assert REDACTED in data.decode()
    assert encode_entry(decoded) == data  # redaction is stable: the bytes round-trip


_SECRET_PIECES = ["eyJ", "hbGc", ".", "-----BEGIN ", "RSA ", "PRIVATE KEY", "SECRET",
                  "PRIVATE+KEY+", "bearer ", "Basic\t", "DPoP ", "abcdefghijklmnop",
                  "x", " "]  # fmt: skip


@given(st.lists(st.sampled_from(_SECRET_PIECES) | st.text(max_size=4), max_size=12).map("".join))
def test_the_one_scan_finds_what_the_patterns_find(text: str) -> None:
    """Entries are searched with all the secret patterns in one scan: it must match
    exactly the strings one of them matches (each keeps its own flags)."""
    assert bool(_ANY_SECRET.search(text)) == any(p.search(text) for p in _SECRETS)


# Pieces for whole entries: secret lookalikes, the characters \\b and \\s judge, NUL (the join's
# separator), a lone surrogate, non-ASCII letters Python's IGNORECASE takes for ASCII ones
# (long s for s, dotless i for i, the Kelvin sign for k), a key-order character.
_ENTRY_PIECES = [*_SECRET_PIECES, "Bear", "er ", "Ba\u017fic ", "bas\u0131c ", "\u212a", "\x00",
                 "\t", "\n", "\ud800", "é", "\ue000", "\\", '"', "_"]  # fmt: skip
_ENTRY_TEXT = (
    st.lists(st.sampled_from(_ENTRY_PIECES) | st.text(max_size=3), min_size=1, max_size=10)
    .map("".join)
    .filter(bool)
)


def _walked(value: AuditEntry) -> bytes:
    """encode_entry's bytes when every string is walked: escaped, redacted, checked."""
    data = redact_secrets(escape_unencodable(value.to_json()))
    check_no_secrets(data)
    return canonical(data)


@given(_ENTRY_TEXT, _ENTRY_TEXT, st.lists(_ENTRY_TEXT, max_size=3))
def test_an_entry_judged_whole_gets_the_bytes_the_walk_gives(
    dataset: str, participant: str, reasons: list[str]
) -> None:
    """Most entries are judged on their strings joined (nothing to fix: written as they
    are); the bytes must be those of the walk that escapes and redacts string by string."""
    value = entry(
        dataset=dataset,
        actor=Actor(participant=participant),
        decision=DecisionRecord(result="deny", reasons=tuple(reasons)),
    )
    assert encode_entry(value) == _walked(value)


@pytest.mark.parametrize("pattern", _SECRETS, ids=lambda p: p.pattern[:12])
@settings(max_examples=60)
@given(data=st.data())
def test_every_ascii_match_holds_a_literal_the_quick_judgement_looks_for(
    pattern: re.Pattern[str], data: st.DataObject
) -> None:
    """ASCII text without any of _LITERALS, or case-insensitively _SCHEMES, is passed
    without the regular expression: every pattern's ASCII matches must hold one."""
    text = data.draw(st.from_regex(pattern, alphabet=st.characters(max_codepoint=127)))
    assert pattern.search(text)
    assert not nothing_to_fix([text])


@pytest.mark.parametrize(
    "text",
    [
        JWT,
        "-----BEGIN RSA PRIVATE KEY-----",
        "key=PRIVATE+KEY+abc",
        "Authorization: bearer abcdefghijklmnop",
        "BASIC abcdefghijklmnopqr",
        "DPoP abcdefghijklmnopqrst",
    ],
)
def test_each_kind_of_lookalike_is_never_passed_unjudged(text: str) -> None:
    """One ASCII lookalike of every pattern and scheme (the property test above draws at
    random; these always run): each goes to the expression, and from there to redaction."""
    assert not nothing_to_fix(["plain", text])
    assert REDACTED in encode_entry(entry(dataset=text)).decode()


def test_strings_are_judged_together_but_matched_one_by_one() -> None:
    """The join's NUL cannot complete a lookalike across two strings, and a string's start
    after it is a word boundary as at the start of the text."""
    assert nothing_to_fix(["Bearer", "abcdefghijklmnopqrstu"])
    assert not nothing_to_fix(["x", "Bearer abcdefghijklmnopqrstu"])
    assert not nothing_to_fix(["x", "\ud800"])
    assert not nothing_to_fix(["Ba\u017fic abcdefghijklmnopqrstu"])  # non-ASCII: the expression


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ({"purpose": JWT}, "entry.purpose"),
        ({"actor": {"client": JWT}}, "entry.actor.client"),
        ({"decision": {"reasons": ["ok", JWT]}}, "entry.decision.reasons[1]"),
        (("ok", (JWT,)), "entry[1][0]"),
    ],
)
def test_check_no_secrets_still_refuses(value: Any, path: str) -> None:
    with pytest.raises(EntryError) as caught:
        check_no_secrets(value)
    assert caught.value.code == "secret-in-entry"
    assert caught.value.detail == f"{path} looks like a raw token or secret"
    assert JWT not in str(caught.value)


def test_redacted_paths_are_exact_and_kept_when_written_again() -> None:
    bearer = "Bearer abcdefghijklmnopqrstuvwxyz012345"
    assert decode_entry(encode_entry(entry(actor=Actor(client=bearer)))).redacted == (
        "actor.client",
    )
    again = decode_entry(encode_entry(entry(redacted=("purpose",), dataset=JWT)))
    assert again.redacted == ("purpose", "dataset")
    assert again.dataset == REDACTED  # the signature too: every segment of the token


def test_escaped_paths_are_kept_when_written_again() -> None:
    again = decode_entry(encode_entry(entry(escaped=("target",), dataset="\ud800")))
    assert again.escaped == ("target", "dataset")


@pytest.mark.parametrize(
    "original", ["\ud800", "col\udc80umn", "back\\slash \\udfff \udfff", "\U0001f600 \ud800"]
)
def test_unencodable_caller_text_is_escaped_reversibly(original: str) -> None:
    data = encode_entry(
        entry(dataset=original, decision=DecisionRecord(result="deny", reasons=("x", original)))
    )
    decoded = decode_entry(data)
    assert decoded.escaped == ("dataset", "decision.reasons[1]")
    assert decoded.dataset is not None
    assert unescape(decoded.dataset) == original
    assert decoded.decision is not None
    assert unescape(decoded.decision.reasons[1]) == original
    assert encode_entry(decoded) == data


def test_encodable_text_keeps_its_bytes() -> None:
    """Old entries and their hashes are unchanged: only unencodable text is escaped."""
    assert encode_entry(entry(dataset="plain \\ text €")) == canonical(
        {
            "actor": {},
            "dataset": "plain \\ text €",
            "event": "access-decision",
            "time": NOW_TEXT,
            "version": 1,
        }
    )


def test_text_of_the_field_size_is_kept_and_one_more_is_clipped() -> None:
    assert clip("x" * MAX_TEXT) == "x" * MAX_TEXT
    assert clip("x" * (MAX_TEXT + 1)) == "x" * (MAX_TEXT - len(CLIPPED)) + CLIPPED
    assert entry(target="x" * MAX_TEXT).target == "x" * MAX_TEXT


def test_a_redacted_reason_is_never_clipped() -> None:
    """Reasons are the full explanation (STYLE.md 6): redaction leaves the rest whole."""
    reason = f"bad token {JWT} " + "x" * 600
    data = encode_entry(entry(decision=DecisionRecord(result="deny", reasons=(reason,))))
    decoded = decode_entry(data)
    assert decoded.decision is not None
    assert decoded.decision.reasons == (f"bad token {REDACTED} " + "x" * 600,)
    assert decoded.redacted == ("decision.reasons[0]",)


def test_overlong_caller_text_is_clipped_not_refused() -> None:
    long = entry(target="/v1/datasets/" + "x" * 5000, dataset="\ud800" * 200)
    decoded = decode_entry(encode_entry(long))
    assert decoded.target is not None
    assert len(decoded.target) == MAX_TEXT
    assert decoded.target.endswith(CLIPPED)
    assert decoded.dataset is not None
    assert len(decoded.dataset) <= MAX_TEXT


@pytest.mark.parametrize(
    ("fields", "detail"),
    [
        ('"actor":{},"dataset":5', "dataset: Input should be a valid string"),
        ('"actor":{"client":5}', "actor.client: Input should be a valid string"),
        (
            '"actor":{},"token_sha256":"abc"',
            "token_sha256: Value error, token_sha256 takes hash_token(token), 43 base64url"
            " characters",
        ),
    ],
)
def test_an_invalid_entry_is_refused_with_its_first_error(fields: str, detail: str) -> None:
    data = f'{{{fields},"event":"access-decision","time":"{NOW_TEXT}","version":1}}'
    with pytest.raises(EntryError) as caught:
        decode_entry(data.encode())
    assert (caught.value.code, caught.value.detail) == ("invalid-entry", detail)


def test_a_naive_time_is_refused_with_its_reason() -> None:
    data = b'{"actor":{},"event":"access-decision","time":"2026-11-27T09:30:01","version":1}'
    with pytest.raises(EntryError) as caught:
        decode_entry(data)
    detail = "time: Value error, naive datetime: pass a timezone-aware time"
    assert (caught.value.code, caught.value.detail) == ("invalid-entry", detail)


def test_unknown_fields_and_versions_are_refused() -> None:
    with pytest.raises(ValidationError):
        AuditEntry.model_validate({"time": NOW, "event": "access-decision", "token": "x"})
    with pytest.raises(ValidationError):
        entry(version=2)
    with pytest.raises(EntryError):
        decode_entry(b'{"event":"nope","time":"2026-11-27T09:30:01Z","version":1}')


# Caller text whose redaction makes it longer than a field (a JWT lookalike of 9 characters
# becomes the 10 of ``[redacted]``) is clipped after redaction, and the clip's ``...`` can
# complete a lookalike the text only began: "Bearer " and 13 characters, or "eyJabcd".
_GROWS = "eyJaaaa.. " * 40  # 400 characters, 440 once redacted


@pytest.mark.parametrize("begun", ["Bearer abcdefghijklm", "eyJabcd"])
def test_a_lookalike_the_clip_completes_is_cut_and_the_entry_still_written(begun: str) -> None:
    filler = "x" * (500 - len(_GROWS) - 40 - len(begun) - 1) + " "
    text = _GROWS + filler + begun + "!" * 40  # redacted, ``begun`` ends at the clip
    assert len(text) == 500
    data = encode_entry(entry(dataset=text))
    decoded = decode_entry(data)
    assert decoded.redacted == ("dataset",)
    assert decoded.dataset is not None
    assert len(decoded.dataset) <= MAX_TEXT
    assert decoded.dataset.endswith(CLIPPED)
    assert not _ANY_SECRET.search(decoded.dataset)
    assert decoded.dataset.startswith(f"{REDACTED} " * 40 + filler)


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        (f"a {JWT} b", f"a {REDACTED} b"),
        # a JWE: five segments, the encrypted key empty with "dir"
        ("eyJhbGciOiJkaXIifQ..aXY.Y2lwaGVy.dGFn, then", f"{REDACTED}, then"),
        # an unsigned JWT ends in its dot
        ("eyJhbGciOiJub25lIn0.eyJ4IjoxfQ. after", f"{REDACTED} after"),
    ],
)
def test_every_segment_of_a_token_is_redacted(text: str, kept: str) -> None:
    assert decode_entry(encode_entry(entry(dataset=text))).dataset == kept


@given(st.datetimes(timezones=st.timezones()))
def test_time_is_written_as_strftime_would(moment: datetime) -> None:
    """format_time spells an instant as strftime("%Y-%m-%dT%H:%M:%S.%fZ") in UTC does."""
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:  # a time zone pushing the instant past year 1 or 9999
        return
    assert format_time(moment) == utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
