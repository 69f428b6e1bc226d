"""Eyeriss row-stationary engine: the PE (:mod:`nnloom.hw.eyeriss_pe`) and the PE
array with its global buffer and counters (:mod:`nnloom.hw.eyeriss_array`)."""

from .eyeriss_array import EyerissArray
from .eyeriss_pe import EyerissConfig, EyerissPE

__all__ = ["EyerissConfig", "EyerissPE", "EyerissArray"]
