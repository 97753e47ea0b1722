"""Calibrated noise from OpenDP, never hand-rolled: counts, bounded sums and partition selection.

One query's epsilon is split evenly over its releases: one for the set of groups (when the
query groups), one per count and sum, two per mean (its sum and its count). Sensitivities
follow from the contribution bounds ``connectors.contributors`` applies first: a contributor
adds at most ``max_contributions`` (L) rows to at most ``max_groups`` (P) groups, so a count
vector moves by at most P*L in L1, a sum vector by P*L*max(|low|, |high|), and each group's
contributor count by 1 in at most P groups (the partition selection's l0, l1, l-inf).

OpenDP samples from exact distributions (discrete Laplace for integers; its float Laplace
is the one that resists the floating-point attacks on naive ``random.laplace``), and each
measurement's privacy map is checked against the epsilon it was given, so a scale this module
got wrong fails closed (``NoiseError``) rather than releasing.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from types import ModuleType
from typing import TYPE_CHECKING, Any

from connectors.errors import ConnectorError
from connectors.query import AggFunc, Noise, Query

if TYPE_CHECKING:
    import opendp.prelude as dp
_SLACK = 1 + 1e-9  # OpenDP rounds its maps up; a scale is raised by this until it fits


@cache
def _opendp() -> ModuleType:
    """OpenDP, imported when the first private query needs it: it adds about 20 MiB to every
    gateway process, most of which never answers a private query."""
    import opendp.prelude  # noqa: PLC0415 - imported on first use, see above

    opendp.prelude.enable_features("contrib")  # not vetted by proof: laplace, threshold
    return opendp.prelude


class NoiseError(ConnectorError):
    """The mechanism could not be built to fit its share of the budget (500, fail closed)."""

    code = "connector_config"


@dataclass(frozen=True)
class Plan:
    """One query's mechanisms: each release's epsilon and the contribution bounds."""

    noise: Noise
    each: float  # epsilon of each release

    def bound(self, column: str) -> tuple[float, float]:
        """The clamping range of ``column`` (checked to exist by ``protect``)."""
        found = self.noise.bound(column)
        if found is None:
            raise NoiseError(f"no bounds for {column!r}")
        return found

    @property
    def count_sensitivity(self) -> int:
        """How far one contributor moves a vector of counts, in L1."""
        return self.noise.max_groups * self.noise.max_contributions

    def sum_sensitivity(self, column: str) -> float:
        """How far one contributor moves a vector of sums of ``column``, in L1."""
        low, high = self.bound(column)
        return self.count_sensitivity * max(abs(low), abs(high))

    def scales(self, query: Query) -> dict[str, float]:
        """The Laplace scale of each output column (for headers and ``explain``)."""
        out: dict[str, float] = {}
        for agg in query.aggregates:
            if agg.func is AggFunc.SUM and agg.column:
                out[agg.name] = self.sum_sensitivity(agg.column) / self.each
            elif agg.func is AggFunc.AVG and agg.column:
                out[agg.name] = self.sum_sensitivity(agg.column) / self.each  # of its sum
            else:
                out[agg.name] = self.count_sensitivity / self.each
        return out


def releases(query: Query) -> int:
    """How many releases a query's epsilon is split over."""
    parts = sum(2 if a.func is AggFunc.AVG else 1 for a in query.aggregates)
    return parts + (1 if query.group_by else 0)


def plan(query: Query) -> Plan:
    """The mechanisms' plan for a query that carries ``noise``."""
    if query.noise is None:
        raise NoiseError("no noise for this query")
    return Plan(query.noise, query.noise.epsilon / releases(query))


def select(counts: dict[int, int], plan: Plan, k: int) -> set[int]:
    """The groups whose noisy contributor count passes the threshold (partition selection).

    The threshold is the smallest that keeps the chance of releasing a group a single
    contributor could make within the query's delta, and at least k.
    """
    dp = _opendp()
    delta = plan.noise.delta
    if delta is None:
        raise NoiseError("a grouped private query needs a delta")
    p = plan.noise.max_groups
    d_in = (p, p, 1)
    domain = dp.map_domain(dp.atom_domain(T=str), dp.atom_domain(T=int))
    metric = dp.l01inf_distance(dp.absolute_distance(T=int))
    scale = p / plan.each
    for _ in range(64):
        low, high = 1, 2**31 - 1
        while low < high:  # the smallest threshold whose delta fits
            mid = (low + high) // 2
            made = dp.m.make_laplace_threshold(domain, metric, scale=scale, threshold=mid)
            if _cost(made, d_in)[1] <= delta:
                high = mid
            else:
                low = mid + 1
        made = dp.m.make_laplace_threshold(domain, metric, scale=scale, threshold=max(low, k))
        eps, used = _cost(made, d_in)
        if eps <= plan.each and used <= delta:
            released = _release(made, {str(i): n for i, n in counts.items()})
            return {int(i) for i in released}
        scale *= _SLACK
    raise NoiseError("partition selection does not fit its budget")


def count(values: list[int], plan: Plan) -> list[int]:
    """``values`` (one count per group) with discrete Laplace noise."""
    dp = _opendp()
    domain = dp.vector_domain(dp.atom_domain(T=int))
    made = _fitted(
        lambda s: dp.m.make_laplace(domain, dp.l1_distance(T=int), scale=s),
        plan.count_sensitivity, plan.count_sensitivity / plan.each, plan.each,
    )  # fmt: skip
    return list(_release(made, values))


def total(values: list[float], plan: Plan, column: str) -> list[float]:
    """``values`` (one clamped sum per group) with Laplace noise."""
    dp = _opendp()
    domain = dp.vector_domain(dp.atom_domain(T=float, nan=False))
    sensitivity = plan.sum_sensitivity(column)
    made = _fitted(
        lambda s: dp.m.make_laplace(domain, dp.l1_distance(T=float), scale=s),
        sensitivity, sensitivity / plan.each, plan.each,
    )  # fmt: skip
    return [float(v) for v in _release(made, [float(v) for v in values])]


def _release(made: Any, data: object) -> Any:
    """``made(data)``; OpenDP's refusal (a value outside its domain) fails closed."""
    dp = _opendp()
    try:
        return made(data)
    except dp.OpenDPException as exc:
        raise NoiseError(f"the mechanism refused its input ({exc})") from exc


def _cost(made: dp.Measurement, d_in: object) -> Any:
    """OpenDP's privacy map of ``made`` at ``d_in``: epsilon, or (epsilon, delta)."""
    return made.map(d_in)  # type: ignore[no-untyped-call]  # opendp's map is not annotated


def _fitted(build: Any, d_in: float, scale: float, epsilon: float) -> Any:
    """``build(scale)``, the scale raised until OpenDP's own map says it costs <= epsilon."""
    for _ in range(64):
        made = build(scale)
        if _cost(made, d_in) <= epsilon:
            return made
        scale *= _SLACK
    raise NoiseError("the mechanism does not fit its budget")
