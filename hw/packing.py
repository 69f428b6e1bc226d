"""Pack Python values into the flat bit vectors of Amaranth layouts, and back.

The emitted Verilog flattens every stream payload into one vector; these
helpers use the Amaranth layout objects themselves (offsets, element shapes,
signedness), so a testbench never types a bit position.

A value for a :class:`~amaranth.lib.data.StructLayout` is a ``dict``, for an
:class:`~amaranth.lib.data.ArrayLayout` a sequence, and for a plain shape an
``int`` (negative for two's complement).
"""

from __future__ import annotations

from amaranth.hdl import Shape
from amaranth.lib import data

__all__ = ["pack", "unpack", "width_of"]


def width_of(layout) -> int:
    return Shape.cast(layout).width


def _leaf(layout):
    return not isinstance(layout, data.Layout)


def pack(layout, value) -> int:
    """Bit pattern (a non-negative int) of ``value`` laid out as ``layout``."""
    if _leaf(layout):
        shape = Shape.cast(layout)
        v = int(value)
        lo = -(1 << (shape.width - 1)) if shape.signed else 0
        hi = (1 << (shape.width - 1)) - 1 if shape.signed else (1 << shape.width) - 1
        if not lo <= v <= hi:
            raise ValueError(f"{v} does not fit {shape}")
        return v & ((1 << shape.width) - 1)
    if isinstance(layout, data.ArrayLayout):
        value = list(value)
        if len(value) != layout.length:
            raise ValueError(f"expected {layout.length} elements, got {len(value)}")
        ew = width_of(layout.elem_shape)
        out = 0
        for n, v in enumerate(value):
            out |= pack(layout.elem_shape, v) << (n * ew)
        return out
    out = 0
    for name, field in layout:
        if name not in value:
            raise KeyError(f"missing field {name!r}")
        out |= pack(field.shape, value[name]) << field.offset
    return out


def unpack(layout, bits: int):
    """Inverse of :func:`pack`."""
    bits = int(bits)
    if _leaf(layout):
        shape = Shape.cast(layout)
        v = bits & ((1 << shape.width) - 1)
        if shape.signed and v >> (shape.width - 1):
            v -= 1 << shape.width
        return v
    if isinstance(layout, data.ArrayLayout):
        ew = width_of(layout.elem_shape)
        return [unpack(layout.elem_shape, bits >> (n * ew)) for n in range(layout.length)]
    return {name: unpack(field.shape, bits >> field.offset) for name, field in layout}
