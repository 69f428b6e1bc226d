"""The planner: board budgets and the search for the accelerator to build.
"""

from .boards import Budget, Board, BOARDS, DEFAULT_BOARD, board, BoardError
from .plan import Plan, PlanError, plan, SEARCH_DIMS, fixed_plan

__all__ = [
    "Budget", "Board", "BOARDS", "DEFAULT_BOARD", "board", "BoardError", "Plan", "PlanError",
    "plan", "SEARCH_DIMS", "fixed_plan",
]
