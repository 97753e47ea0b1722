"""The YAML parser's refusals, codes, sentences and marks pinned exactly (issue 18).

Each test here kills mutants of ``policies/yaml_*`` that the looser tests of
``test_strict_yaml.py`` let live: a reason no test compared, a mark no test read, a branch
(a merge key given as a list, a naive timestamp) no test took.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import yaml

from policies import PolicyError, parse_yaml_policy, parse_yaml_state
from policies.errors import PolicySyntaxError
from policies.model import Iri, Ref, RuleKind
from policies.profile import SLUIS_PROFILE
from policies.vocab import ODRL
from policies.yaml_source import _syntax_error, load_yaml

BASE = """\
uid: urn:sluis:policy:meters
target: urn:dataset:meters
permissions:
  - action: read
    assignee: urn:org:uni
"""


@pytest.mark.parametrize("text", ["uid: x\n\x00\n", b"uid: x\n\x00\n", b"uid: x\n\x07\n"])
def test_an_unprintable_character_is_a_syntax_error(text: str | bytes) -> None:
    """PyYAML checks every character when the loader is made, which ``load_yaml`` did outside
    its ``try``: a NUL anywhere escaped as a bare ``yaml.ReaderError``, not a ``PolicyError``."""
    with pytest.raises(PolicySyntaxError) as caught:
        parse_yaml_policy(text)
    assert caught.value.code == "yaml_syntax"
    assert caught.value.reason.startswith("unacceptable character #x00")
    assert caught.value.reason.endswith(": special characters are not allowed")
    assert (caught.value.line, caught.value.column, caught.value.key) == (None, None, None)


def test_an_undecodable_byte_is_a_syntax_error() -> None:
    with pytest.raises(PolicySyntaxError) as caught:
        parse_yaml_policy(b"uid: \xc3(\n")
    assert (caught.value.code, caught.value.reason, caught.value.line) == (
        "yaml_syntax",
        "unacceptable character #x00c3: invalid continuation byte",
        None,
    )


@pytest.mark.parametrize(
    ("text", "reason", "line", "column"),
    [
        # A problem without a context: the problem alone, no "(None)".
        ("uid: a: b\n", "mapping values are not allowed here", 1, 7),
        ("uid: *nope\n", "found undefined alias 'nope'", 1, 6),
        (
            "uid: x\n---\nuid: y\n",
            "but found another document (expected a single document in the stream)",
            2,
            1,
        ),
        (
            "uid: !!python/object x\n",
            "could not determine a constructor for the tag 'tag:yaml.org,2002:python/object'",
            1,
            6,
        ),
    ],
)
def test_a_syntax_error_reads_as_pyyaml_problem_and_context(
    text: str, reason: str, line: int, column: int
) -> None:
    with pytest.raises(PolicySyntaxError) as caught:
        parse_yaml_policy(text)
    assert (caught.value.code, caught.value.reason) == ("yaml_syntax", reason)
    assert (caught.value.line, caught.value.column) == (line, column)


def test_a_yaml_error_with_nothing_to_say_is_unreadable() -> None:
    """The fallback when PyYAML gives neither a problem nor a message."""
    found = _syntax_error(yaml.YAMLError())
    assert (found.code, found.reason, found.line) == ("yaml_syntax", "unreadable", None)


MERGED = """\
base: &base
  x: 1
  y: 2
more: &more
  z: 3
one:
  <<: *base
  y: 9
many:
  <<: [*base, *more]
"""


def test_merged_keys_are_marked_where_their_source_wrote_them() -> None:
    """A key a merge brings in is marked at its line in the anchor; an explicit key wins."""
    marks = load_yaml(MERGED).marks
    assert marks[("one", "x")] == (2, 3)
    assert marks[("one", "y")] == (8, 3)
    assert marks[("many", "x")] == (2, 3)
    assert marks[("many", "z")] == (5, 3)
    assert ("many", "<<") not in marks
    assert ("one", "<<") not in marks


def test_an_error_in_a_merged_key_names_the_anchor_line() -> None:
    text = (
        "uid: urn:p\n"
        "prefixes: {}\n"
        "permissions:\n"
        "  - action: read\n"
        "    data: &limits\n"
        "      max_rows: 5\n"
        "prohibitions:\n"
        "  - action: use\n"
        "    data:\n"
        "      <<: [*limits]\n"
        "      max_rows: -1\n"
    )
    with pytest.raises(PolicyError) as caught:
        parse_yaml_policy(text)
    assert (caught.value.code, caught.value.line, caught.value.key) == (
        "invalid_value",
        11,
        "prohibitions[0].data.max_rows",
    )


@pytest.mark.parametrize("operator", ["and", "or", "xone", "andSequence"])
def test_each_logical_operator_compiles_to_its_odrl_name(operator: str) -> None:
    policy = parse_yaml_policy(
        BASE + f"    constraints:\n      - {{{operator}: [[spatial, eq, NL], [spatial, eq, BE]]}}\n"
    )
    (logical,) = policy.permissions[0].constraints
    assert logical.operator == "http://www.w3.org/ns/odrl/2/" + operator


def test_an_error_inside_a_logical_constraint_names_the_member() -> None:
    with pytest.raises(PolicyError) as caught:
        parse_yaml_policy(
            BASE + "    constraints:\n      - {or: [[spatial, eq, NL],\n"
            "             [count, lteq, ten]]}\n"
        )
    assert (caught.value.code, caught.value.line, caught.value.key) == (
        "invalid_value",
        8,
        "permissions[0].constraints[0].or[1]",
    )


def test_an_unsupported_right_operand_names_its_constraint() -> None:
    with pytest.raises(PolicyError) as caught:
        parse_yaml_policy(BASE + "    constraints:\n      - [purpose, eq, {a: 1}]\n")
    assert (caught.value.code, caught.value.reason) == (
        "policy_structure",
        "unsupported value {'a': 1}",
    )
    assert (caught.value.line, caught.value.column, caught.value.key) == (
        7,
        9,
        "permissions[0].constraints[0]",
    )


def test_a_state_time_keeps_its_offset_and_a_naive_one_is_utc() -> None:
    world = parse_yaml_state(
        "now: 2025-06-01T00:00:00\n"
        "request_times: [2025-06-01T02:00:00+02:00, 2025-06-01T00:00:00]\n"
    )
    expected = datetime(2025, 6, 1, tzinfo=UTC)
    assert world.now == expected
    assert list(world.state.request_times) == [expected, expected]


@pytest.mark.parametrize(
    ("tail", "code", "reason", "key"),
    [
        (
            "    duties: [{delete_after: soon}]\n",
            "invalid_value",
            "an ISO 8601 duration, e.g. P30D or PT1H, not 'soon'",
            "permissions[0].duties[0].delete_after",
        ),
        (
            "    constraints: [[purpose, eq]]\n",
            "invalid_value",
            "a constraint is [left operand, operator, right operand]",
            "permissions[0].constraints[0]",
        ),
        # The left operand and operator are terms: a number there is no triple.
        (
            "    constraints: [[1, eq, x]]\n",
            "invalid_value",
            "a constraint is [left operand, operator, right operand]",
            "permissions[0].constraints[0]",
        ),
        # A duty that is neither a mapping nor known: read as a rule, and refused as one.
        (
            "    duties: [compensate]\n",
            "wrong_type",
            "Input should be a valid dictionary or instance of Rule, not 'compensate'",
            "permissions[0].duties[0]",
        ),
        # Only a scalar given is quoted back: not a list, not a boolean.
        (
            "    data: {max_rows: [1]}\n",
            "wrong_type",
            "Input should be a valid integer",
            "permissions[0].data.max_rows",
        ),
        (
            "    data: {max_rows: true}\n",
            "wrong_type",
            "Input should be a valid integer",
            "permissions[0].data.max_rows",
        ),
        # What was given is quoted back in at most 80 characters.
        (
            "    data: {rate_limit: " + "x" * 100 + "}\n",
            "invalid_value",
            "a rate is N/duration, e.g. 100/PT1H" + (", not '" + "x" * 100 + "'")[:80],
            "permissions[0].data.rate_limit",
        ),
        ("    dta: {}\n", "unknown_key", "unknown key", "permissions[0].dta"),
        # Two logical operators in one mapping: which one applies is not guessed.
        (
            "    constraints:\n"
            "      - {and: [[spatial, eq, NL]], andSequence: [[spatial, eq, BE]]}\n",
            "invalid_value",
            "a logical constraint has exactly one of and, or, xone, andSequence",
            "permissions[0].constraints[0].<logical>",
        ),
    ],
)
def test_a_schema_refusal_reads_exactly(tail: str, code: str, reason: str, key: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_yaml_policy(BASE + tail)
    assert (caught.value.code, caught.value.reason, caught.value.key) == (code, reason, key)


def test_a_missing_key_reads_exactly() -> None:
    with pytest.raises(PolicyError) as caught:
        parse_yaml_policy("permissions: []\n")
    assert (caught.value.code, caught.value.reason, caught.value.line) == (
        "missing_key",
        "required, but absent",
        1,
    )


def test_a_single_unknown_action_names_the_key_without_an_index() -> None:
    with pytest.raises(PolicyError) as caught:
        parse_yaml_policy("uid: urn:p\npermissions: [{action: teleport}]\n")
    assert (caught.value.code, caught.value.key) == ("unknown_action", "permissions[0].action")


def test_right_operand_values_keep_their_yaml_types() -> None:
    policy = parse_yaml_policy(
        BASE + "    constraints:\n"
        "      - [dateTime, lt, 2028-01-01T02:00:00+02:00]\n"
        "      - [dateTime, gt, 2027-01-01T00:00:00]\n"
        "      - [purpose, eq, [urn:a:b, NL:north, urn, https://x.example/y, http://x.example/z]]\n"
        "      - [sluis:queryDelta, eq, 0.1]\n"
    )
    late, early, purpose, delta = policy.permissions[0].constraints
    # A time keeps its offset; a naive one is UTC.
    (moment,) = late.right_operand  # type: ignore[union-attr]
    assert moment == datetime(2028, 1, 1, tzinfo=UTC)
    assert moment.utcoffset() == timedelta(hours=2)  # type: ignore[union-attr]
    (moment,) = early.right_operand  # type: ignore[union-attr]
    assert moment == datetime(2027, 1, 1, tzinfo=UTC)
    assert moment.tzinfo is UTC  # type: ignore[union-attr]
    # An IRI is recognised by its scheme (the first colon) or a known prefix, nothing else.
    assert purpose.right_operand == (  # type: ignore[union-attr]
        Iri("urn:a:b"),
        "NL:north",
        "urn",
        Iri("https://x.example/y"),
        Iri("http://x.example/z"),
    )
    assert [type(v) for v in purpose.right_operand] == [Iri, str, str, Iri, Iri]  # type: ignore[union-attr]
    # A YAML float as the exact decimal written.
    assert delta.right_operand == (Decimal("0.1"),)  # type: ignore[union-attr]


def test_collections_duties_and_nested_duties_compile_exactly() -> None:
    policy = parse_yaml_policy(
        "uid: urn:p\n"
        "permissions:\n"
        "  - action: read\n"
        "    duties: [{action: compensate, duties: [{action: inform}]}]\n"
        "prohibitions: [{action: use, assignee: [{collection: urn:group:x}, urn:org:y]}]\n"
    )
    assert policy.prohibitions[0].assignees == (
        Ref("urn:group:x", collection=True),
        Ref("urn:org:y", collection=False),
    )
    (duty,) = policy.permissions[0].duties
    (nested,) = duty.duties
    assert (duty.kind, duty.uid) == (RuleKind.DUTY, "#permission-0-duty-0")
    assert (nested.kind, nested.uid) == (RuleKind.DUTY, "#permission-0-duty-0-duty-0")


@pytest.mark.parametrize("text", ["- a\n", "", "just text\n"])
def test_a_policy_that_is_no_mapping_is_refused_at_line_1(text: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_yaml_policy(text)
    assert (caught.value.code, caught.value.reason, caught.value.line) == (
        "policy_structure",
        "a YAML policy is a mapping with a uid",
        1,
    )


@pytest.mark.parametrize(
    ("text", "code", "line", "column", "key"),
    [
        (
            "uid: urn:p\nprohibitions: [{action: teleport}]\n",
            "unknown_action",
            2,
            17,
            "prohibitions[0].action",
        ),
        (
            "uid: urn:p\nobligations: [{action: teleport}]\n",
            "unknown_action",
            2,
            16,
            "obligations[0].action",
        ),
        (
            "uid: urn:p\npermissions: [{action: use, duties: [{action: teleport}]}]\n",
            "unknown_action",
            2,
            39,
            "permissions[0].duties[0].action",
        ),
        # Valid for the schema (a number > 0), refused by the profile: a delta is below 1.
        (
            "uid: urn:p\npermissions: [{action: use, data: {query_delta: 2}}]\n",
            "invalid_value",
            2,
            36,
            "permissions[0].data.query_delta",
        ),
        (
            "uid: urn:p\npermissions:\n  - action: use\n    data: {columns: }\n",
            "empty_value",
            4,
            12,
            "permissions[0].data.columns",
        ),
        (
            "uid: urn:p\npermissions:\n  - action: use\n    action: read\n",
            "duplicate_key",
            4,
            5,
            "permissions[0].action",
        ),
    ],
)
def test_a_compile_refusal_names_its_rule_line_and_column(
    text: str, code: str, line: int, column: int, key: str
) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_yaml_policy(text)
    assert (caught.value.code, caught.value.line, caught.value.column, caught.value.key) == (
        code,
        line,
        column,
        key,
    )


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("uid: urn:p\nuid: urn:q\n", "given twice"),
        ("uid: urn:p\ntarget:\n", "given without a value"),
    ],
)
def test_the_loader_refusals_read_exactly(text: str, reason: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_yaml_policy(text)
    assert (caught.value.reason, caught.value.line, caught.value.column) == (reason, 2, 1)


def test_rules_inherit_the_policy_parties_and_target_unless_they_name_their_own() -> None:
    """A rule without a target applies to the policy's target, not to every asset."""
    policy = parse_yaml_policy(
        "uid: urn:p\ntarget: urn:t\nassignee: urn:a\nassigner: urn:g\n"
        "permissions:\n"
        "  - {action: use}\n"
        "  - {action: read, target: urn:t2, assignee: urn:a2, assigner: urn:g2}\n"
        "obligations: [{action: compensate}]\n"
    )
    inherited, own = policy.permissions
    (obligation,) = policy.obligations
    for rule in (inherited, obligation):
        assert (rule.targets, rule.assignees, rule.assigners) == (
            (Ref("urn:t"),),
            (Ref("urn:a"),),
            (Ref("urn:g"),),
        )
    assert (own.targets, own.assignees, own.assigners) == (
        (Ref("urn:t2"),),
        (Ref("urn:a2"),),
        (Ref("urn:g2"),),
    )
    assert (obligation.kind, obligation.uid) == (RuleKind.DUTY, "#duty-0")
    assert (inherited.uid, own.uid) == ("#permission-0", "#permission-1")


def test_a_prefix_expands_up_to_the_first_colon_only() -> None:
    policy = parse_yaml_policy(
        BASE
        + "    constraints: [[purpose, eq, dpv:A:B]]\nprefixes: {dpv: 'https://w3id.org/dpv#'}\n"
    )
    (purpose,) = policy.permissions[0].constraints
    assert purpose.right_operand == (Iri("https://w3id.org/dpv#A:B"),)  # type: ignore[union-attr]


def test_the_profile_given_is_the_one_validated_against() -> None:
    """An action the given profile declares is accepted, though the Sluis profile lacks it."""
    teleport = ODRL + "teleport"
    profile = replace(SLUIS_PROFILE, actions=SLUIS_PROFILE.actions | {teleport})
    policy = parse_yaml_policy("uid: urn:p\npermissions: [{action: teleport}]\n", profile)
    assert [a.name for a in policy.permissions[0].actions] == [teleport]
