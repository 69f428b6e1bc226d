"""Energy cost tables: the energy of one access at each storage level.

A table gives the cost of one MAC and of one word access at each level of
the memory hierarchy:

=========  ===================================================
``mac``    one multiply-accumulate
``rf``     register file / scratchpad inside a PE
``array``  a transfer between PEs (array / network-on-chip)
``buffer`` the on-chip global buffer (SRAM)
``dram``   off-chip DRAM
=========  ===================================================

Two tables are built in:

* :data:`EYERISS_NORMALIZED`: Eyeriss's normalized costs (Chen et al., ISCA
  2016), in units of one MAC: RF 1, array 2, buffer 6, DRAM 200.
* :data:`HOROWITZ_45NM`: picojoules in 45 nm (Horowitz, ISSCC 2014) for 8-bit
  words: an int8 multiply (0.2 pJ) plus a 32-bit add (0.1 pJ) per MAC; an
  SRAM read of 20 pJ per 64 bits (32 KB array) for the buffer, i.e. 2.5 pJ
  per byte; DRAM at 1.3-2.6 nJ per 64 bits, taken at the midpoint, 1.95 nJ,
  i.e. 244 pJ per byte.  Horowitz gives no register-file or inter-PE
  figure; those two take Eyeriss's ratios to the MAC (1x and 2x).

A user's table is a TOML file with the same keys (see
:meth:`CostTable.from_toml` and docs/perf.md).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from nnloom.hw.errors import InputError

__all__ = ["CostTable", "EYERISS_NORMALIZED", "HOROWITZ_45NM", "TABLES", "LEVELS",
           "CostTableError"]

LEVELS = ("rf", "array", "buffer", "dram")


class CostTableError(InputError):
    """A malformed cost-table file; the message names the file and field."""


@dataclass(frozen=True)
class CostTable:
    name: str
    unit: str           # "pJ" or "MAC" (normalized to one MAC)
    mac: float
    rf: float
    array: float
    buffer: float
    dram: float
    source: str = ""

    def energy(self, macs: float, accesses: dict[str, float]) -> float:
        """Total energy of ``macs`` MACs and ``accesses[level]`` word accesses."""
        unknown = set(accesses) - set(LEVELS)
        if unknown:
            raise ValueError(f"unknown storage level(s) {sorted(unknown)}; levels are {LEVELS}")
        return macs * self.mac + sum(n * getattr(self, lvl) for lvl, n in accesses.items())

    def breakdown(self, macs: float, accesses: dict[str, float]) -> dict[str, float]:
        out = {"mac": macs * self.mac}
        out.update({lvl: accesses.get(lvl, 0) * getattr(self, lvl) for lvl in LEVELS})
        return out

    @classmethod
    def from_toml(cls, path: str | Path) -> "CostTable":
        """Read ``[costs]`` with ``unit``, ``mac``, ``rf``, ``array``, ``buffer``,
        ``dram`` (non-negative numbers) and optional ``name``, ``source``."""
        path = Path(path)
        try:
            doc = tomllib.loads(path.read_text())
        except OSError as e:
            raise CostTableError(f"{path}: cannot read: {e.strerror}") from None
        except tomllib.TOMLDecodeError as e:
            raise CostTableError(f"{path}: not valid TOML: {e}") from None
        costs = doc.get("costs")
        if not isinstance(costs, dict):
            raise CostTableError(f"{path}: costs: expected a [costs] table")
        values = {"name": str(costs.get("name", path.stem)), "source": str(costs.get("source", str(path)))}
        unit = costs.get("unit", "pJ")
        if unit not in ("pJ", "MAC"):
            raise CostTableError(f"{path}: costs.unit: expected pJ | MAC, got {unit!r}")
        values["unit"] = unit
        for key in ("mac",) + LEVELS:
            v = costs.get(key)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
                raise CostTableError(f"{path}: costs.{key}: expected a number >= 0, got {v!r}")
            values[key] = float(v)
        extra = set(costs) - {f.name for f in fields(cls)}
        if extra:
            raise CostTableError(f"{path}: costs.{sorted(extra)[0]}: unknown key; expected "
                                 + ", ".join(["unit", "mac", *LEVELS, "name", "source"]))
        return cls(**values)


EYERISS_NORMALIZED = CostTable("eyeriss", "MAC", mac=1.0, rf=1.0, array=2.0, buffer=6.0,
                               dram=200.0, source="Chen, Emer, Sze, ISCA 2016 (normalized to a MAC)")
HOROWITZ_45NM = CostTable("horowitz45", "pJ", mac=0.3, rf=0.3, array=0.6, buffer=2.5, dram=244.0,
                          source="Horowitz, ISSCC 2014, 45 nm, 8-bit words (RF and array: Eyeriss ratios)")
TABLES = {t.name: t for t in (EYERISS_NORMALIZED, HOROWITZ_45NM)}
