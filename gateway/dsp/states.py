"""The DSP contract negotiation state machine (pure).

::

    REQUESTED --agree--> AGREED --verification--> VERIFIED --finalize--> FINALIZED
        |                   ^
        +--offer--> OFFERED +--(consumer) request--> REQUESTED
                       +--(consumer) accepted--> ACCEPTED --agree--> AGREED
    any state but FINALIZED and TERMINATED --termination (either side)--> TERMINATED

The consumer moves with its messages, the provider (Sluis) with its decisions. A move from a
state that does not allow it is :class:`InvalidTransition` (400 ContractNegotiationError);
nothing is stored.
"""

from __future__ import annotations

from typing import Final, Literal

from gateway.errors import BadRequest

State = Literal["REQUESTED", "OFFERED", "ACCEPTED", "AGREED", "VERIFIED", "FINALIZED", "TERMINATED"]
Move = Literal["request", "accepted", "verification", "termination", "offer", "agree", "finalize"]
FINAL: Final = frozenset({"FINALIZED", "TERMINATED"})
_OPEN: Final = frozenset({"REQUESTED", "OFFERED", "ACCEPTED", "AGREED", "VERIFIED"})

#: For each move: the states it may start from, and where it leads.
MOVES: Final[dict[str, tuple[frozenset[str], State]]] = {
    # the consumer's messages
    "request": (frozenset({"OFFERED"}), "REQUESTED"),
    "accepted": (frozenset({"OFFERED"}), "ACCEPTED"),
    "verification": (frozenset({"AGREED"}), "VERIFIED"),
    "termination": (_OPEN, "TERMINATED"),
    # the provider's decisions
    "offer": (frozenset({"REQUESTED"}), "OFFERED"),
    "agree": (frozenset({"REQUESTED", "ACCEPTED"}), "AGREED"),
    "finalize": (frozenset({"VERIFIED"}), "FINALIZED"),
}


class InvalidTransition(BadRequest):
    """A message the negotiation's state does not allow (400; nothing changes)."""

    def __init__(self, detail: str, *, pids: dict[str, str]) -> None:
        super().__init__("dsp-invalid-transition", detail)
        self.dsp_pids = pids  # read by gateway.http.problems


def after(state: str, move: Move, *, pids: dict[str, str]) -> State:
    """The state ``move`` leads to from ``state``; InvalidTransition when it may not."""
    starts, to = MOVES[move]
    if state not in starts:
        raise InvalidTransition(f"the negotiation is {state}: {move} is not allowed", pids=pids)
    return to
