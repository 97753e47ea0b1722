"""A human-readable explanation of a ``Decision``: which rule, which constraint, why."""

from __future__ import annotations

import json

from policies.decision import DataLimits, Decision, PrivacyLimits, RuleReport


def explain(decision: Decision) -> str:
    """Several lines for a provider or a security officer (the audit log keeps the values)."""
    lines = [
        f"{decision.effect.value.upper()} ({decision.reason})",
        f"policy {decision.policy_id} {decision.policy_hash}",
    ]
    if decision.rule:
        lines.append(f"granted by {decision.rule}")
    lines.extend(f"note: {note}" for note in decision.notes)
    for report in decision.rules:
        lines.extend(_rule_lines(report, indent="  "))
    if decision.limits is not None:  # permits only: no audit entry carries these lines
        lines.extend(limits_lines(decision.limits))
        if decision.limits.privacy is not None:
            lines.extend(_privacy_lines(decision.limits.privacy))
    return "\n".join(lines)


def limits_lines(limits: DataLimits) -> list[str]:
    """The limits a permit carries, in the policy's own words (its YAML ``data`` keys).

    Only what the policy sets is shown; ``columns: all`` when it names no columns.
    """
    shown = [("columns", _flow(limits.columns) if limits.columns is not None else "all")]
    if limits.row_filter is not None:
        shown.append(("row_filter", json.dumps(limits.row_filter)))  # quoted, as YAML reads it
    for key, number in (("min_group_size", limits.min_group_size), ("max_rows", limits.max_rows)):
        if number is not None:
            shown.append((key, str(number)))
    if limits.rate_limit is not None:
        rate = limits.rate_limit
        shown.append(("rate_limit", f"{rate.max_requests}/{rate.window}"))
    shown.extend(("notify", party) for party in limits.notify)
    if limits.delete_after is not None:
        shown.append(("delete_after", limits.delete_after))
    if limits.duties:
        shown.append(("duties to discharge", _flow(limits.duties)))
    return ["limits:", *(f"  {key}: {value}" for key, value in shown)]


def _flow(items: tuple[str, ...]) -> str:
    return f"[{', '.join(items)}]"


def _privacy_lines(p: PrivacyLimits) -> list[str]:
    """The budget, a query's cost, and the Laplace scale of each output (one release)."""
    share = p.max_groups * p.max_contributions
    lines = [
        f"privacy: budget epsilon {p.epsilon} per {p.period}; one query costs {p.query_epsilon}"
        + (f" (delta {p.query_delta} when grouped)" if p.query_delta is not None else ""),
        "privacy: a query's epsilon is split over its releases (one per count or sum, two per"
        " mean, one for the groups); with one release the noise scale is:",
        f"  count: {float(share / p.query_epsilon):.6g}",
    ]
    for column, low, high in p.bounds:
        scale = share * max(abs(low), abs(high)) / p.query_epsilon
        lines.append(
            f"  sum({column}): {float(scale):.6g} (each contributor clamped to {low}..{high})"
        )
    return lines


def _rule_lines(report: RuleReport, indent: str) -> list[str]:
    state = "active" if report.active else ("inactive" if report.applies else "does not apply")
    why = "; ".join(report.reasons)
    lines = [f"{indent}{report.kind} {report.uid}: {state}" + (f" ({why})" if why else "")]
    lines.extend(
        f"{indent}  [{'ok' if c.satisfied else 'no'}] {c.reason}" for c in report.constraints
    )
    for duty in report.duties:
        lines.extend(_rule_lines(duty, indent + "  "))
    return lines
