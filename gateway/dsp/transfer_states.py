"""The DSP transfer process state machine (pure).

::

    REQUESTED --start--> STARTED --suspension--> SUSPENDED --start--> STARTED
    STARTED --completion--> COMPLETED
    REQUESTED, STARTED, SUSPENDED --termination--> TERMINATED

Each start hands out a new Sluis token; leaving STARTED revokes it. A move from a state that
does not allow it is 400 ``dsp-invalid-transition`` (TransferError), nothing stored.
"""

from __future__ import annotations

from typing import Final, Literal

from gateway.dsp.states import InvalidTransition

TransferMove = Literal["start", "suspension", "completion", "termination"]
MOVES: Final[dict[str, tuple[frozenset[str], str]]] = {
    "start": (frozenset({"REQUESTED", "SUSPENDED"}), "STARTED"),
    "suspension": (frozenset({"STARTED"}), "SUSPENDED"),
    "completion": (frozenset({"STARTED"}), "COMPLETED"),
    "termination": (frozenset({"REQUESTED", "STARTED", "SUSPENDED"}), "TERMINATED"),
}


def after(state: str, move: TransferMove, *, pids: dict[str, str]) -> str:
    """The state ``move`` leads to from ``state``; InvalidTransition when it may not."""
    starts, to = MOVES[move]
    if state not in starts:
        raise InvalidTransition(f"the transfer is {state}: {move} is not allowed", pids=pids)
    return to
