"""Left-operand evaluators; importing this package registers every built-in one."""

from policies.operands import context, data, parties, temporal
from policies.operands.registry import EvalInput, Evaluator, Outcome, left_operand, registered

__all__ = [
    "EvalInput",
    "Evaluator",
    "Outcome",
    "context",
    "data",
    "left_operand",
    "parties",
    "registered",
    "temporal",
]
