"""``sluis policy``: validate, eval, explain and test, on our examples and the ODRL suites' files.

The suites are read where they are (``shared/vectors/odrl`` beside ``main/``), never copied.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from gateway.cli.policy_cmd import app
from tests.support.shared import VECTORS

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "policies"
ODRL = VECTORS / "odrl"
SOLIDLAB = ODRL / "SolidLabResearch__ODRL-Test-Suite"
W3C = ODRL / "w3c__odrl" / "formal-semantics" / "examples"
needs_vectors = pytest.mark.skipif(
    not SOLIDLAB.is_dir() or not W3C.is_dir(), reason=f"ODRL vectors not present at {ODRL}"
)

UNKNOWN_TERM = """
@prefix odrl: <http://www.w3.org/ns/odrl/2/> .
<urn:p:shoes> a odrl:Set ; odrl:permission [ odrl:action odrl:read ; odrl:target <urn:x> ;
  odrl:constraint [ odrl:leftOperand odrl:shoeSize ; odrl:operator odrl:lt ; odrl:rightOperand 3 ]
] .
"""


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def one_line_error(result: Any) -> str:
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("sluis: error: ")
    return str(lines[0])


@pytest.mark.parametrize("name", ["machine_sensors.yaml", "grid_meters.ttl"])
def test_validate_prints_id_and_hash(runner: CliRunner, name: str) -> None:
    result = runner.invoke(app, ["validate", str(EXAMPLES / name)])
    assert result.exit_code == 0, result.output
    uid, digest = result.output.split()
    assert uid.startswith("urn:sluis:policy:")
    assert digest.startswith("sha256:")
    again = runner.invoke(app, ["validate", str(EXAMPLES / name)])
    assert again.output == result.output  # blank nodes do not change the hash


def test_validate_names_the_unknown_term(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "shoes.ttl"
    path.write_text(UNKNOWN_TERM)
    line = one_line_error(runner.invoke(app, ["validate", str(path)]))
    assert "http://www.w3.org/ns/odrl/2/shoeSize" in line
    assert "unknown_left_operand" in line


@pytest.mark.parametrize(
    ("name", "text", "code"),
    [
        (
            "broken.ttl",
            "@prefix odrl: <http://www.w3.org/ns/odrl/2/> . <a> odrl:x",
            "turtle_syntax",
        ),
        ("broken.jsonld", '{"@context": {}, "uid": ', "jsonld_syntax"),
        ("broken.yaml", "uid: [unclosed\npermissions: x", "yaml_syntax"),
        ("typo.yaml", "uid: urn:p\npermissions: [{action: teleport}]", "unknown_action"),
        ("binary.ttl", b"\xff\xfe\x00", "not UTF-8"),
        ("policy.txt", "uid: x", "unknown policy format .txt"),
    ],
)
def test_validate_malformed_file_is_one_line(
    runner: CliRunner, tmp_path: Path, name: str, text: str | bytes, code: str
) -> None:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    line = one_line_error(runner.invoke(app, ["validate", str(path)]))
    assert code in line
    assert name in line


def test_validate_missing_file(runner: CliRunner, tmp_path: Path) -> None:
    line = one_line_error(runner.invoke(app, ["validate", str(tmp_path / "absent.ttl")]))
    assert "absent.ttl: no such file" in line


def _solidlab(slugs: list[str]) -> list[Any]:
    manifest = SOLIDLAB / "allow_deny_manifest.derived.json"
    if not manifest.is_file():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"no {manifest}"))]
    cases = {c["slug"]: c for c in json.loads(manifest.read_text())["cases"]}
    return [pytest.param(cases[s], id=s) for s in slugs]


# Allow and Deny: plain, a prohibition, dateTime at, before and after, duties set and violated.
SOLIDLAB_CASES = _solidlab(
    [
        "testcase-001-alice",
        "testcase-004-alice",
        "testcase-026-alice-read-x",
        "testcase-037-alice-read-x-past",
        "testcase-038-alice-read-x-future",
        "testcase-060-fulfilled",
        "testcase-061-violated",
        "testcase-065-alice",
    ]
)


@needs_vectors
@pytest.mark.parametrize("case", SOLIDLAB_CASES)
def test_eval_reads_solidlab_turtle_as_is(runner: CliRunner, case: dict[str, Any]) -> None:
    args = ["eval", "--policy", str(SOLIDLAB / case["policy"])]
    args += ["--request", str(SOLIDLAB / case["request"]), "--state", str(SOLIDLAB / case["sotw"])]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    expected = {"Allow": "permit", "Deny": "deny"}[case["expected_decision"]]
    assert out["decision"] == expected, case["title"]
    assert out["policy"]["hash"].startswith("sha256:")
    assert isinstance(out["report"], list)
    assert ("limits" in out) is (expected == "permit")


def _w3c(name: str) -> tuple[Path, Path]:
    request = next(W3C.rglob(f"evaluationrequest{name}.json"))
    return next(request.parent.parent.glob("policy*.json")), request


@needs_vectors
@pytest.mark.parametrize(("name", "expected"), [("A11", "permit"), ("A12", "deny")])
def test_eval_reads_w3c_jsonld_with_conformance_profile(
    runner: CliRunner, name: str, expected: str
) -> None:
    policy, request = _w3c(name)
    args = ["eval", "--policy", str(policy), "--request", str(request)]
    result = runner.invoke(app, [*args, "--profile", "conformance"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["decision"] == expected
    assert out["now"].startswith(("2017", "2019"))  # the time the evaluation request states


SENSORS = ["--policy", str(EXAMPLES / "machine_sensors.yaml")]
UNIVERSITY = [
    "--request",
    str(EXAMPLES / "requests" / "university_aggregate.yaml"),
    "--state",
    str(EXAMPLES / "requests" / "university_state.yaml"),
]


def test_eval_yaml_permit_carries_limits(runner: CliRunner) -> None:
    result = runner.invoke(app, ["eval", *SENSORS, *UNIVERSITY])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert (out["decision"], out["reason"]) == ("permit", "permitted")
    assert out["limits"]["min_group_size"] == 5
    assert out["limits"]["rate_limit"] == {"max_requests": 100, "window": "P1D"}
    assert out["policy"]["id"] == "urn:sluis:policy:acme:spindle-sensors"


def test_now_overrides_the_state(runner: CliRunner) -> None:
    result = runner.invoke(app, ["eval", *SENSORS, *UNIVERSITY, "--now", "2100-02-01T00:00:00Z"])
    out = json.loads(result.output)
    assert (out["decision"], out["now"]) == ("deny", "2100-02-01T00:00:00+00:00")


@pytest.mark.parametrize("now", ["yesterday", "2026-03-02T10:00:00"])
def test_now_must_be_iso_with_a_zone(runner: CliRunner, now: str) -> None:
    line = one_line_error(runner.invoke(app, ["eval", *SENSORS, *UNIVERSITY, "--now", now]))
    assert "--now" in line


def test_eval_missing_request_is_one_line(runner: CliRunner, tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.ttl")
    line = one_line_error(runner.invoke(app, ["eval", *SENSORS, "--request", missing]))
    assert "nope.ttl: no such file" in line


def test_explain_names_the_deciding_rule(runner: CliRunner) -> None:
    result = runner.invoke(app, ["explain", *SENSORS, *UNIVERSITY])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("PERMIT (permitted)")
    assert "granted by urn:sluis:policy:acme:spindle-sensors#research-read" in result.output


def test_explain_prints_the_limits_in_the_policys_words(runner: CliRunner) -> None:
    result = runner.invoke(app, ["explain", *SENSORS, *UNIVERSITY])
    assert result.exit_code == 0, result.output
    tail = result.output.split("\nlimits:\n", 1)[1].splitlines()
    assert tail[:6] == [
        "  columns: [machine_model, spindle_temp_c, vibration_rms, recorded_on]",
        "  min_group_size: 5",
        "  max_rows: 10000",
        "  rate_limit: 100/P1D",
        "  notify: urn:org:acme-machines",
        "  delete_after: P1Y",
    ]
    assert "DataLimits(" not in result.output
    assert "RateLimit(" not in result.output


@needs_vectors
def test_explain_shows_the_privacy_budget_and_noise_scales(
    runner: CliRunner, tmp_path: Path
) -> None:
    ask = tmp_path / "ask.yaml"
    ask.write_text(
        "party: urn:org:uni-oost\naction: read\ntarget: urn:sluis:dataset:staff-salaries\n"
        'context: {purpose: ["https://w3id.org/dpv#AcademicResearch"], aggregate: true}\n'
    )
    policy = str(EXAMPLES / "staff_salaries.yaml")
    args = ["explain", "--policy", policy, "--request", str(ask), "--now", "2026-03-02T10:00:00Z"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "privacy: budget epsilon 1.0 per P30D; one query costs 0.1" in result.output
    assert "  sum(salary): 1.5e+06 (each contributor clamped to 0..150000)" in result.output
    assert "sluis:privacyBudget 1.0/P30D: 0 spent, this query costs 0.1" in result.output


def test_explain_a_prohibition(runner: CliRunner) -> None:
    data = SOLIDLAB / "data"
    args = ["explain", "--policy", str(data / "policies" / "policy-2.ttl")]
    args += ["--request", str(data / "requests" / "request-1.ttl")]
    result = runner.invoke(app, [*args, "--state", str(data / "sotw" / "temporal.ttl")])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("DENY (prohibited)")
    assert "prohibition urn:uuid:" in result.output
    assert ": active" in result.output


def test_policy_tests_in_examples_pass(runner: CliRunner) -> None:
    result = runner.invoke(app, ["test", str(EXAMPLES)])
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1].endswith(" passed, 0 failed")


FAILING = """
policy: machine_sensors
cases:
  - name: a consultancy is wrongly expected to be permitted
    now: 2026-03-02T10:00:00Z
    request: {party: urn:org:consultancy, action: read, target: urn:sluis:dataset:spindle-sensors}
    expect: permit
"""


def test_failing_policy_test_exits_1(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "machine_sensors.yaml").write_text((EXAMPLES / "machine_sensors.yaml").read_text())
    (tmp_path / "wrong_test.yaml").write_text(FAILING)
    result = runner.invoke(app, ["test", str(tmp_path)])
    assert result.exit_code == 1, result.output
    assert result.output.strip().splitlines()[-1] == "0 passed, 1 failed"
    assert "FAIL" in result.output


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({}, "no policy tests"),
        ({"x_test.yaml": "policy: absent\ncases: []"}, "policy 'absent' not found"),
        ({"x_test.yaml": "cases: []"}, "policy_test"),
    ],
)
def test_policy_test_errors_are_one_line(
    runner: CliRunner, tmp_path: Path, files: dict[str, str], message: str
) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    assert message in one_line_error(runner.invoke(app, ["test", str(tmp_path)]))


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("party: [unclosed", "yaml_syntax"),
        ("- a list", "request_structure"),
        ("action: read\ncontext: [purpose]", ":2:1: context: Input should be a valid dictionary"),
        ("party: urn:org:x", "request.yaml:1:1: action: required, but absent (missing_key)"),
        (
            "party: urn:org:x\naction: [read, use}\n",
            "request.yaml:2:19: expected ',' or ']', but got '}' (while parsing a flow sequence)",
        ),
    ],
)
def test_eval_malformed_yaml_request_is_one_line(
    runner: CliRunner, tmp_path: Path, text: str, code: str
) -> None:
    path = tmp_path / "request.yaml"
    path.write_text(text)
    line = one_line_error(runner.invoke(app, ["eval", *SENSORS, "--request", str(path)]))
    assert code in line


TYPO_POLICY = """\
uid: urn:sluis:policy:typo
target: urn:dataset:x
permissions:
  - action: read
    date:
      columns: [a]
"""


def test_validate_names_file_line_and_key_of_a_typo(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "typo.yaml"
    path.write_text(TYPO_POLICY)
    line = one_line_error(runner.invoke(app, ["validate", str(path)]))
    assert line == f"sluis: error: {path}:5:5: permissions[0].date: unknown key (unknown_key)"


def test_policy_test_typo_names_file_line_and_key(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "machine_sensors.yaml").write_text((EXAMPLES / "machine_sensors.yaml").read_text())
    path = tmp_path / "typo_test.yaml"
    path.write_text(FAILING.replace("    request:", "    stat: {use_count: 1}\n    request:"))
    line = one_line_error(runner.invoke(app, ["test", str(tmp_path)]))
    assert line == f"sluis: error: {path}:6:5: cases[0].stat: unknown key (unknown_key)"
