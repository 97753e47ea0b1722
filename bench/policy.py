"""The cost of one policy decision, against PyCasbin with an equivalent attribute model.

One realistic Sluis policy (12 constraints on its permission: purpose, two dateTime bounds,
count, spatial, industry, columns, row filter, aggregates of at least k, max rows, a rate
limit; a university party collection; a prohibition for machine makers) decided for a
permitted university request, timed call by call (µs, p50 and p99):

* ``policies.evaluate (compiled)``: the gateway's path, a ``CompiledPolicy`` per version;
* ``policies.evaluate (Policy)``: a ``Policy`` object, compiled once and remembered;
* ``explain a permit``: the compiled decision plus writing its full report (what a deny pays);
* ``uncompiled (reference)``: the engine before compiling (hash and validation per call);
* ``casbin.enforce``: PyCasbin with the same checks as an ABAC model (baseline).

The cases take turns (20 rounds of 1000 calls each), so that a shared machine's load falls
on all of them alike; run it a few times and report ranges with the load average.
Run with ``python -m bench.policy``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from tempfile import TemporaryDirectory
from types import MappingProxyType

import casbin  # type: ignore[import-untyped]  # the baseline; no type hints shipped
from rich.console import Console
from rich.table import Table

from policies import Iri, Request, State, build_state, evaluate, explain, parse_yaml_policy
from policies.compiled import compile_policy
from policies.engine import evaluate_reference
from policies.profile import SLUIS_PROFILE
from policies.vocab import ODRL, SLUIS

CALLS = 20000
WARMUP = 1000
ROUNDS = 20
NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
UNI = "urn:sluis:participant:NTRNL-40000001"
DATASET = "urn:sluis:dataset:spindle-sensors"
DPV = "https://w3id.org/dpv#"
COLUMNS = ("machine_model", "spindle_temp_c", "vibration_rms", "recorded_on")

POLICY = f"""
uid: urn:sluis:policy:bench
type: Offer
conflict: prohibit
assigner: urn:org:acme-machines
target: {DATASET}
prefixes:
  dpv: "{DPV}"
permissions:
  - uid: urn:sluis:policy:bench#research-read
    action: read
    assignee:
      - collection: urn:group:universities
    constraints:
      - [purpose, isAnyOf, [dpv:AcademicResearch, dpv:NonCommercialResearch]]
      - [dateTime, gteq, 2026-01-01T00:00:00Z]
      - [dateTime, lt, 2028-01-01T00:00:00Z]
      - [count, lteq, 1000]
      - [spatial, isAnyOf, [NL, BE]]
      - [industry, eq, manufacturing]
    data:
      columns: [{", ".join(COLUMNS)}]
      row_filter: "region = 'NL'"
      min_group_size: 5
      max_rows: 10000
      rate_limit: 100/P1D
prohibitions:
  - uid: urn:sluis:policy:bench#no-competitors
    action: use
    assignee:
      - collection: urn:group:machine-makers
"""

MODEL = """
[request_definition]
r = sub, obj, act, env

[policy_definition]
p = sub, obj, act, purposes, not_before, not_after, max_uses, places, industry, columns, \
  min_k, max_rows, rate, window, eft

[role_definition]
g = _, _

[policy_effect]
e = some(where (p.eft == allow)) && !some(where (p.eft == deny))

[matchers]
m = g(r.sub, p.sub) && r.obj == p.obj && actionIn(r.act, p.act) && \
  (p.eft == "deny" || (inSet(r.env.purposes, p.purposes) && \
  r.env.now >= p.not_before && r.env.now < p.not_after && \
  r.env.uses + 1 <= toInt(p.max_uses) && inSet(r.env.places, p.places) && \
  r.env.industry == p.industry && inSet(r.env.columns, p.columns) && \
  p.min_k != "" && r.env.aggregate && r.env.rows <= toInt(p.max_rows) && \
  recent(r.env.times, r.env.now, p.window) + 1 <= toInt(p.rate)))
"""
CASBIN_POLICY = f"""
p, urn:group:universities, {DATASET}, read, {DPV}AcademicResearch|{DPV}NonCommercialResearch, \
2026-01-01T00:00:00+00:00, 2028-01-01T00:00:00+00:00, 1000, NL|BE, manufacturing, \
{"|".join(COLUMNS)}, 5, 10000, 100, 86400, allow
p, urn:group:machine-makers, {DATASET}, use, , , , , , , , , , , , deny
g, {UNI}, urn:group:universities
"""


@dataclass(frozen=True)
class Env:
    """The request's attributes as PyCasbin's matcher reads them."""

    purposes: tuple[str, ...]
    now: str
    uses: int
    places: tuple[str, ...]
    industry: str
    columns: tuple[str, ...]
    aggregate: bool
    rows: int
    times: tuple[float, ...]


def _in_set(values: tuple[str, ...], allowed: str) -> bool:
    options = allowed.split("|")
    return bool(values) and all(v in options for v in values)


def _action_in(asked: str, granted: str) -> bool:
    return granted in (asked, "use")  # read is included in use


def _recent(times: tuple[float, ...], now: str, window: str) -> int:
    at = datetime.fromisoformat(now).timestamp()
    return sum(1 for t in times if at - float(window) < t <= at)


def _enforcer(folder: Path) -> casbin.Enforcer:
    (folder / "model.conf").write_text(MODEL)
    (folder / "policy.csv").write_text(CASBIN_POLICY.replace("\\\n", ""))
    enforcer = casbin.Enforcer(str(folder / "model.conf"), str(folder / "policy.csv"))
    enforcer.add_function("inSet", _in_set)
    enforcer.add_function("actionIn", _action_in)
    enforcer.add_function("recent", _recent)
    enforcer.add_function("toInt", int)
    return enforcer


def _request() -> tuple[Request, State]:
    context = {
        ODRL + "purpose": (Iri(DPV + "AcademicResearch"),),
        ODRL + "spatial": ("NL",),
        ODRL + "industry": ("manufacturing",),
        SLUIS + "columns": COLUMNS[:3],
        SLUIS + "aggregate": (True,),
        SLUIS + "maxRows": (500,),
    }
    times = tuple(NOW - timedelta(minutes=m) for m in (5, 30, 90, 600, 2000))
    state = build_state(
        broader={UNI: ["urn:group:universities"]},
        use_count=12,
        request_times=times,
        agreement_start=NOW - timedelta(days=30),
    )
    return Request(UNI, ODRL + "read", DATASET, MappingProxyType(context)), state


def _env(state: State) -> Env:
    return Env(
        purposes=(DPV + "AcademicResearch",), now=NOW.isoformat(), uses=state.use_count,
        places=("NL",), industry="manufacturing", columns=COLUMNS[:3], aggregate=True,
        rows=500, times=tuple(t.timestamp() for t in state.request_times),
    )  # fmt: skip


def _time_interleaved(
    actions: dict[str, Callable[[], object]], calls: int
) -> dict[str, tuple[float, float, float]]:
    """Per case (p50, p99, mean CPU) µs per call, the cases taking turns in rounds.

    Taking turns spreads a busy machine's bursts over every case alike, so the ratios hold
    better than the absolute numbers; the CPU time is what the load distorts least.
    """
    samples: dict[str, list[float]] = {name: [] for name in actions}
    cpu = dict.fromkeys(actions, 0.0)
    for action in actions.values():
        for _ in range(WARMUP):
            action()
    for _ in range(ROUNDS):
        for name, action in actions.items():
            taken = samples[name]
            started_cpu = time.process_time()
            for _ in range(calls // ROUNDS):
                started = time.perf_counter()
                action()
                taken.append(time.perf_counter() - started)
            cpu[name] += time.process_time() - started_cpu
    return {name: _stats(taken, cpu[name]) for name, taken in samples.items()}


def _stats(samples: list[float], cpu: float) -> tuple[float, float, float]:
    ordered = sorted(samples)
    p50, p99 = ordered[len(ordered) // 2], ordered[int(0.99 * len(ordered))]
    return p50 * 1e6, p99 * 1e6, cpu / len(samples) * 1e6


def cases(folder: Path) -> dict[str, Callable[[], object]]:
    """Each timed action; every one of them permits (checked before timing)."""
    policy = parse_yaml_policy(POLICY)
    compiled = compile_policy(policy, SLUIS_PROFILE)
    request, state = _request()
    enforcer, env = _enforcer(folder), _env(state)
    found: dict[str, Callable[[], object]] = {
        "policies.evaluate (compiled)": lambda: evaluate(compiled, request, state, now=NOW),
        "policies.evaluate (Policy)": lambda: evaluate(policy, request, state, now=NOW),
        "explain a permit": lambda: explain(evaluate(compiled, request, state, now=NOW)),
        "uncompiled (reference)": lambda: evaluate_reference(policy, request, state, now=NOW),
        "casbin.enforce (baseline)": lambda: enforcer.enforce(UNI, DATASET, "read", env),
    }
    for name, action in found.items():
        if not _permits(action()):
            raise SystemExit(f"{name} does not permit the bench request")
    return found


def _permits(result: object) -> bool:
    if isinstance(result, str):
        return result.startswith("PERMIT")
    return result is True or getattr(result, "permitted", False) is True


def main() -> None:
    """Time each case and print a table (µs) with the load average."""
    with TemporaryDirectory() as tmp:
        timed = _time_interleaved(cases(Path(tmp)), CALLS)
    baseline = timed["casbin.enforce (baseline)"]
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    table = Table(title=f"policy decision, {CALLS} calls, {os.cpu_count()} cores, load {load}")
    for column in ("case", "p50 µs", "p99 µs", "CPU µs/call", "vs casbin (p50)", "(CPU)"):
        table.add_column(column, justify="left" if column == "case" else "right")
    for name, (p50, p99, cpu) in timed.items():
        speedup = f"{baseline[0] / p50:.2f}x", f"{baseline[2] / cpu:.2f}x"
        table.add_row(name, f"{p50:.1f}", f"{p99:.1f}", f"{cpu:.1f}", *speedup)
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
