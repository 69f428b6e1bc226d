"""The result table of a sweep: one row a point, as CSV (``results.csv``).

Columns: ``point`` (the point's config hash), ``network``, ``board``,
``size``, ``batch``, ``clock_mhz``, then each stage's fields prefixed with
its name (``model_cycles``, ``rtl_bit_exact``, ``fpga_fmax_mhz``, ...), in
the stage's own column order; ``rtl_latency_us`` is derived here (the RTL's
cycles at the point's clock: the simulation does not read the clock).
CSV, not Parquet: nnloom keeps pyarrow out of its dependencies.  Empty
cells are values a point does not have (a stage it did not run, an error).
"""

from __future__ import annotations

import csv
import io

from .stage import Stage

__all__ = ["rows", "columns", "to_csv", "POINT_COLUMNS"]

POINT_COLUMNS = ("point", "network", "board", "size", "batch", "clock_mhz")


def _row(record: dict) -> dict:
    c = record["config"]
    row = {"point": record["point"], "network": c["network"]["name"], "board": c["board"],
           "size": c["size"], "batch": c["batch"], "clock_mhz": c["clock_mhz"]}
    for stage, result in record["stages"].items():
        for k, v in result.items():
            row[f"{stage}_{k}"] = v
    if row.get("rtl_cycles") is not None:
        row["rtl_latency_us"] = row["rtl_cycles"] / c["clock_mhz"]
    return row


def rows(records: list[dict]) -> list[dict]:
    """One flat dict per record, in the order given."""
    return [_row(r) for r in records]


def columns(table: list[dict], stages: list[Stage]) -> list[str]:
    """The columns of ``table``: the point's, then each stage's in its order."""
    present = set().union(*table) if table else set()
    out = [c for c in POINT_COLUMNS]
    for st in stages:
        mine = sorted(k for k in present if k.startswith(f"{st.name}_"))
        ordered = [f"{st.name}_{c}" for c in st.columns if f"{st.name}_{c}" in present]
        if st.name == "rtl" and "rtl_latency_us" in present:
            ordered.insert(ordered.index("rtl_cycles") + 1 if "rtl_cycles" in ordered else 0,
                           "rtl_latency_us")
        out += ordered + [k for k in mine if k not in ordered]
    return out


def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def to_csv(table: list[dict], cols: list[str]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for row in table:
        w.writerow([_cell(row.get(c)) for c in cols])
    return buf.getvalue()
