"""Pareto fronts of a sweep: latency against resources and against energy.

:func:`pareto_front` is the set of points no other point beats on both
axes (smaller is better on each).  :func:`pareto_png` draws one panel per
board: every point that fits the board, coloured by network, the front of
each network as a step line, and the planner's choice for that network on
that board as a star (``model_planned``).
"""

from __future__ import annotations

import io
import math

__all__ = ["pareto_front", "pareto_png", "latency_of", "FIGURES"]

#: file -> (x column, x label, x scale) of the sweep's Pareto figures
FIGURES = {
    "pareto_resources.png": ("luts", "LUT4s", 1.0),
    "pareto_energy.png": ("model_energy_pj", "energy per inference (nJ, Horowitz 45 nm)", 1e-3),
}


def pareto_front(points, x, y) -> list:
    """The points of ``points`` not dominated on ``(x(p), y(p))`` (a point
    dominates another when it is no larger on both and smaller on one), in
    order of ``x``.  Of points with equal coordinates the first is kept."""
    best = math.inf
    out = []
    for p in sorted(points, key=lambda p: (x(p), y(p))):
        if y(p) < best:
            out.append(p)
            best = y(p)
    return out


def latency_of(table: list[dict]) -> tuple[str, str]:
    """The latency column the figures use: the RTL's (DMA included) when
    every fitting point has it, else the model's whole-inference estimate
    (the one the planner ranks designs by)."""
    fitting = [r for r in table if r.get("model_fits")]
    if fitting and all(r.get("rtl_latency_us") is not None for r in fitting):
        return "rtl_latency_us", "latency, us (RTL, DMA included)"
    return "model_estimated_latency_us", "latency, us (planner's whole-inference estimate)"


def _resource(table, rows):
    """LUT4s measured by the FPGA build when every plotted point has them, else the estimate."""
    if rows and all(r.get("fpga_luts") is not None for r in rows):
        return "fpga_luts", "LUT4s (FPGA build)"
    return "model_luts", "LUT4s (fit-check estimate)"


def pareto_png(table: list[dict], figure: str, title: str) -> bytes:
    """One of :data:`FIGURES` as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    xcol, xlabel, scale = FIGURES[figure]
    ycol, ylabel = latency_of(table)
    fitting = [r for r in table if r.get("model_fits") and r.get(ycol) is not None]
    if xcol == "luts":
        xcol, xlabel = _resource(table, fitting)
    fitting = [r for r in fitting if r.get(xcol) is not None]
    boards = sorted({r["board"] for r in table})
    networks = sorted({r["network"] for r in table})
    colours = {n: f"C{i % 10}" for i, n in enumerate(networks)}
    cols = min(2, max(1, len(boards)))
    nrows = math.ceil(len(boards) / cols) or 1
    fig, axes = plt.subplots(nrows, cols, figsize=(6 * cols, 4.2 * nrows), squeeze=False)
    for ax, board in zip(axes.flat, boards):
        mine = [r for r in fitting if r["board"] == board]
        for net in networks:
            pts = [r for r in mine if r["network"] == net]
            if not pts:
                continue
            xs = [r[xcol] * scale for r in pts]
            ax.scatter(xs, [r[ycol] for r in pts], s=18, color=colours[net], alpha=0.5,
                       label=net)
            front = pareto_front(pts, lambda r: r[xcol], lambda r: r[ycol])
            ax.step([r[xcol] * scale for r in front], [r[ycol] for r in front], where="post",
                    color=colours[net], linewidth=1.2)
            for r in pts:
                if r.get("model_planned"):
                    ax.scatter([r[xcol] * scale], [r[ycol]], marker="*", s=180,
                               color=colours[net], edgecolor="black", zorder=5)
                    ax.annotate(f"plan {r['size']}x{r['size']}", (r[xcol] * scale, r[ycol]),
                                textcoords="offset points", xytext=(6, 6), fontsize=8)
        ax.set_title(board)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_yscale("log")
        ax.grid(True, alpha=0.3)
        if not mine:
            ax.text(0.5, 0.5, "no point fits this board", ha="center", va="center",
                    transform=ax.transAxes)
        else:
            ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(boards):]:
        ax.axis("off")
    fig.suptitle(title + "  (star: the planner's choice; line: Pareto front)")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()
