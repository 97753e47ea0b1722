"""Issue 11: a policy means exactly what it says, or it is refused naming the line and key.

Each case here was accepted before (the typo silently dropped a restriction); now it is a
``PolicyError`` with a stable code, the 1-based line and the key's path.
"""

from __future__ import annotations

import pytest

from policies import (
    PolicyError,
    PolicyTestError,
    UnknownTerm,
    parse_yaml_policy,
    parse_yaml_request,
    parse_yaml_state,
    policy_hash,
    run_policy_tests,
)

BASE = """\
uid: urn:sluis:policy:meters
target: urn:dataset:meters
permissions:
  - action: read
    assignee: urn:org:uni
"""


@pytest.mark.parametrize(
    ("tail", "code", "line", "key"),
    [
        # `date:` for `data:`: the columns the provider meant to withhold were delivered.
        ("    date:\n      columns: [a]\n", "unknown_key", 6, "permissions[0].date"),
        # `constraint:` for `constraints:`: an unconditional permit.
        (
            "    constraint:\n      - [purpose, eq, x]\n",
            "unknown_key",
            6,
            "permissions[0].constraint",
        ),
        ("    data: {columns: [a], colums: [b]}\n", "unknown_key", 6, "permissions[0].data.colums"),
        ("    data: {max_rows: lots}\n", "wrong_type", 6, "permissions[0].data.max_rows"),
        ("    data: {max_rows: '10'}\n", "wrong_type", 6, "permissions[0].data.max_rows"),
        ("    data: {max_rows: -1}\n", "invalid_value", 6, "permissions[0].data.max_rows"),
        ("    data: {rate_limit: often}\n", "invalid_value", 6, "permissions[0].data.rate_limit"),
        ("    data: {columns: }\n", "empty_value", 6, "permissions[0].data.columns"),
        (
            "    constraints:\n      - [purpose, eq, x]\n      - [dateTime, lt, tomorrow]\n",
            "invalid_value",
            8,
            "permissions[0].constraints[1]",
        ),
        (
            "    constraints:\n      - [count, lteq, ten]\n",
            "invalid_value",
            7,
            "permissions[0].constraints[0]",
        ),
        (
            "    constraints:\n      - [purpose, isNoneOf, []]\n",
            "invalid_value",
            7,
            "permissions[0].constraints[0]",
        ),
        (
            "    constraints:\n      - [purpose, eq]\n",
            "invalid_value",
            7,
            "permissions[0].constraints[0]",
        ),
        (
            "    constraints:\n      - {nor: [[purpose, eq, x]]}\n",
            "unknown_key",
            7,
            "permissions[0].constraints[0].nor",
        ),
        (
            "    duties: [{notify: urn:org:p, uid: x}]\n",
            "unknown_key",
            6,
            "permissions[0].duties[0].uid",
        ),
        (
            "    duties: [{delete_after: soon}]\n",
            "invalid_value",
            6,
            "permissions[0].duties[0].delete_after",
        ),
        (
            "    data: {columns: [a]}\n    data: {columns: [b]}\n",
            "duplicate_key",
            7,
            "permissions[0].data",
        ),
        # `permission:` for `permissions:`: an empty policy.
        ("permission:\n  - action: read\n", "unknown_key", 6, "permission"),
        ("conflict: prohibitt\n", "invalid_value", 6, "conflict"),
        ("type: Agreemnt\n", "invalid_value", 6, "type"),
    ],
)
def test_a_typo_is_an_error_naming_line_and_key(tail: str, code: str, line: int, key: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_yaml_policy(BASE + tail)
    assert (caught.value.code, caught.value.line, caught.value.key) == (code, line, key)
    assert "\n" not in caught.value.reason


def test_missing_uid_names_the_key() -> None:
    with pytest.raises(PolicyError) as caught:
        parse_yaml_policy("permissions: []\n")
    assert (caught.value.code, caught.value.key) == ("missing_key", "uid")


def test_yaml_syntax_error_names_the_line_and_column() -> None:
    with pytest.raises(PolicyError) as caught:
        parse_yaml_policy("uid: x\npermissions: [unclosed\n")
    assert caught.value.code == "yaml_syntax"
    assert caught.value.line is not None
    with pytest.raises(PolicyError) as caught:
        parse_yaml_policy(BASE + "    data: {columns: [a, b}\n")
    assert (caught.value.code, caught.value.line, caught.value.column) == ("yaml_syntax", 6, 26)
    assert caught.value.reason == "expected ',' or ']', but got '}' (while parsing a flow sequence)"
    assert "line 6, column 26: " in str(caught.value)


@pytest.mark.parametrize(
    ("tail", "line", "column", "key"),
    [
        ("    data: {columns: [a], colums: [b]}\n", 6, 26, "permissions[0].data.colums"),
        ("    data: {columns: [a]}\n    data: {columns: [b]}\n", 7, 5, "permissions[0].data"),
        ("    constraints:\n      - [purpose, eq]\n", 7, 9, "permissions[0].constraints[0]"),
        ("  - action: read\n    assignee: urn:org:uni\n    dta: {}\n", 8, 5, "permissions[1].dta"),
    ],
)
def test_a_schema_error_names_the_column_too(tail: str, line: int, column: int, key: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_yaml_policy(BASE + tail)
    assert (caught.value.line, caught.value.column, caught.value.key) == (line, column, key)


def test_the_documented_shorthand_still_compiles() -> None:
    text = BASE + (
        "    constraints:\n"
        "      - [purpose, isAnyOf, [dpv:A, dpv:B]]\n"
        "      - [dateTime, lt, 2028-01-01T00:00:00Z]\n"
        "      - [dateTime, gteq, 2025-01-01]\n"
        "      - {or: [[spatial, eq, NL], [spatial, eq, BE]]}\n"
        "      - [count, lteq, 10]\n"
        "    data: {columns: [a, b], row_filter: \"k = 'x'\", min_group_size: 5,\n"
        "           max_rows: 1000, rate_limit: 100/P1D}\n"
        "    duties: [{notify: urn:org:p}, {delete_after: P30D}, {action: compensate}]\n"
        "prefixes: {dpv: 'https://w3id.org/dpv#'}\n"
        "prohibitions: [{action: use, assignee: [{collection: urn:group:x}]}]\n"
    )
    policy = parse_yaml_policy(text)
    assert [len(r.constraints) for r in policy.permissions] == [10]


POLICY = BASE + "    data: {min_group_size: 2}\n"
CASE = """\
policy: meters
cases:
  - name: aggregates
    now: 2025-06-01T12:00:00Z
    request:
      party: urn:org:uni
      action: read
      target: urn:dataset:meters
      context: {aggregate: true}
"""


@pytest.mark.parametrize(
    ("tail", "code", "line", "key"),
    [
        ("    expect: permit\n    stat: {use_count: 3}\n", "unknown_key", 11, "cases[0].stat"),
        ("    expect: permit\n    expct: deny\n", "unknown_key", 11, "cases[0].expct"),
        ("    reason: permitted\n", "missing_key", 3, "cases[0].expect"),
        ("    expect: maybe\n", "invalid_value", 10, "cases[0].expect"),
        (
            "    expect: permit\n    state: {use_count: many}\n",
            "wrong_type",
            11,
            "cases[0].state.use_count",
        ),
        (
            "    expect: permit\n    state: {request_times: [yesterday]}\n",
            "wrong_type",
            11,
            "cases[0].state.request_times[0]",
        ),
        (
            "    expect: permit\n    now: 2025-06-02T00:00:00Z\n",
            "duplicate_key",
            11,
            "cases[0].now",
        ),
    ],
)
def test_a_typo_in_a_policy_test_is_an_error(tail: str, code: str, line: int, key: str) -> None:
    with pytest.raises(PolicyTestError) as caught:
        run_policy_tests(CASE + tail, {"meters": parse_yaml_policy(POLICY)})
    assert (caught.value.code, caught.value.line, caught.value.key) == (code, line, key)


@pytest.mark.parametrize(
    ("text", "code", "key"),
    [
        (
            CASE.replace("    request:", "    requst:") + "    expect: permit\n",
            "unknown_key",
            "cases[0].requst",
        ),
        (
            CASE.replace("context:", "contxt:") + "    expect: permit\n",
            "unknown_key",
            "cases[0].request.contxt",
        ),
        (
            CASE.replace("{aggregate: true}", "{purpse: [x]}") + "    expect: deny\n",
            "unknown_key",
            "cases[0].request.context.purpse",
        ),
        ("policy: meters\ncases: []\n", "invalid_value", "cases"),
        ("policy: meters\n", "missing_key", "cases"),
        # Without `now` a case would be decided at the wall clock: passes today, fails later.
        (
            CASE.replace("    now: 2025-06-01T12:00:00Z\n", "") + "    expect: permit\n",
            "missing_key",
            "cases[0].now",
        ),
    ],
)
def test_a_policy_test_that_asserts_nothing_is_an_error(text: str, code: str, key: str) -> None:
    with pytest.raises(PolicyTestError) as caught:
        run_policy_tests(text, {"meters": parse_yaml_policy(POLICY)})
    assert (caught.value.code, caught.value.key) == (code, key)


def test_yaml_request_and_state_are_strict() -> None:
    with pytest.raises(PolicyError) as caught:
        parse_yaml_state("use_count: 3\nrequest_time: [2025-06-01T00:00:00Z]\n")
    assert (caught.value.code, caught.value.line, caught.value.key) == (
        "unknown_key",
        2,
        "request_time",
    )
    with pytest.raises(PolicyError) as caught:
        parse_yaml_request("action: read\ncontext: {purpose: [x], colums: [a]}\n")
    assert (caught.value.code, caught.value.key) == ("unknown_key", "context.colums")


def test_merge_keys_may_override_but_not_repeat() -> None:
    shared = BASE + "prohibitions:\n  - <<: *read\n    action: use\n"
    text = shared.replace("  - action: read\n", "  - &read\n    action: read\n")
    assert [a.name.rsplit("/", 1)[1] for a in parse_yaml_policy(text).prohibitions[0].actions] == [
        "use"
    ]
    with pytest.raises(PolicyError) as caught:
        parse_yaml_policy(text + "    action: read\n")
    assert (caught.value.code, caught.value.key) == ("duplicate_key", "prohibitions[0].action")


@pytest.mark.parametrize(
    ("rule", "code", "key"),
    [
        (
            "{action: read, constraints: [[shoeSize, lt, 3]]}",
            "unknown_left_operand",
            "permissions[0].constraints[0]",
        ),
        (
            "{action: read, constraints: [[count, approx, 3]]}",
            "unknown_operator",
            "permissions[0].constraints[0]",
        ),
        ("{action: [read, teleport]}", "unknown_action", "permissions[0].action[1]"),
    ],
)
def test_an_unknown_term_names_its_line_and_key(rule: str, code: str, key: str) -> None:
    with pytest.raises(UnknownTerm) as caught:
        parse_yaml_policy(f"uid: urn:p\n\npermissions:\n  - {rule}\n")
    assert (caught.value.code, caught.value.line, caught.value.key) == (code, 4, key)
    assert caught.value.term in caught.value.reason


def test_data_limits_keep_document_order() -> None:
    """The order of constraints is part of the policy hash: it must not depend on the schema."""
    policy = parse_yaml_policy(BASE + "    data: {max_rows: 5, columns: [a]}\n")
    assert [c.left_operand.rsplit("#", 1)[1] for c in policy.permissions[0].constraints] == [
        "maxRows",
        "columns",
    ]


def test_strict_parsing_keeps_the_hash_of_a_valid_policy() -> None:
    """Known answer from the lenient parser (before issue 11): same meaning, same version."""
    from tests.policies.test_sluis_profile import DATA_POLICY  # noqa: PLC0415 -- one constant

    expected = "sha256:d5f38e1c5eaba3eee500bd1fa742cd78dcc1c21d6414462dff6368f59a4b2fac"
    assert policy_hash(parse_yaml_policy(DATA_POLICY)) == expected
