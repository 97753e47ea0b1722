"""Response bodies the console reads beyond the audit API (officers only)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from gateway.agreements.schemas import Agreement


class OfficerAgreement(Agreement):
    """An agreement with the use limit its policy version states, and the uses left."""

    use_limit: int | None  # None: the policy states no count limit
    uses_left: int | None  # use_limit - use_count, at least 0; None without a limit


class AgreementEvent(BaseModel):
    """One ``agreement-changed`` entry of an agreement: what changed, by whom and why."""

    index: int  # in the log: the console's entry page verifies it there
    time: str
    action: str | None
    state: str | None
    reasons: list[str]  # the state, the reason given, and the policy's report when refused
    participant: str | None
    target: str | None

    @classmethod
    def of(cls, index: int, entry: Any) -> AgreementEvent:
        """From an entry's parsed JSON."""
        decision = entry.get("decision") or {}
        reasons = [r for r in decision.get("reasons", []) if isinstance(r, str)]
        return cls(
            index=index,
            time=str(entry.get("time", "")),
            action=entry.get("action"),
            state=reasons[0] if reasons else None,
            reasons=reasons[1:],
            participant=(entry.get("actor") or {}).get("participant"),
            target=entry.get("target"),
        )
