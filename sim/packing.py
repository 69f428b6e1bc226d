"""Re-export of :mod:`nnloom.hw.packing` (the layout packer lives with the layouts)."""

from nnloom.hw.packing import pack, unpack, width_of  # noqa: F401

__all__ = ["pack", "unpack", "width_of"]
