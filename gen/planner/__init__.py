"""The planner: board budgets, the fit model, and the search for the
accelerator to build (:func:`plan`); :func:`fixed_plan` is the performance
model of one systolic array (``nnloom plan --array``).
"""

from .boards import Budget, Board, BOARDS, DEFAULT_BOARD, board, BoardError
from .plan import Plan, PlanError, Candidate, PlannedLayer, plan, planning_qnet
from .array import ArrayModel, fixed_plan

__all__ = [
    "Budget", "Board", "BOARDS", "DEFAULT_BOARD", "board", "BoardError", "Plan", "PlanError",
    "Candidate", "PlannedLayer", "plan", "planning_qnet", "ArrayModel", "fixed_plan",
]
