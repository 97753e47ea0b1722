"""A human-readable explanation of a ``Decision``: which rule, which constraint, why."""

from __future__ import annotations

from policies.decision import Decision, RuleReport


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
    if decision.limits is not None:
        lines.append(f"limits: {decision.limits}")
    return "\n".join(lines)


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
