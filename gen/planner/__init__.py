"""The planner: board budgets and the search for the accelerator to build.
"""

from .boards import Budget, Board, BOARDS, board, BoardError
from .plan import Plan, PlanError, plan, SIZES, fixed_plan

__all__ = ["Budget", "Board", "BOARDS", "board", "BoardError", "Plan", "PlanError", "plan", "SIZES", "fixed_plan"]
