"""Left-operand evaluators; importing this package registers every built-in one."""

from policies.operands import context, data, parties, privacy, temporal
from policies.operands.registry import (
    Bound,
    EvalInput,
    Evaluator,
    Outcome,
    bind,
    left_operand,
    registered,
)

__all__ = [
    "Bound",
    "EvalInput",
    "Evaluator",
    "Outcome",
    "bind",
    "context",
    "data",
    "left_operand",
    "parties",
    "privacy",
    "registered",
    "temporal",
]
