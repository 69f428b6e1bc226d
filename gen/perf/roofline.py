"""Roofline plot (PNG) of a plan's layers.

x: arithmetic intensity, MACs per DRAM byte; y: attainable performance,
MACs per cycle.  The roof is ``min(peak, intensity x bandwidth)`` with
``peak`` = PEs (one MAC per PE per cycle) and ``bandwidth`` the DRAM bytes
per cycle; each MAC layer is a point at (its intensity, its achieved MACs /
cycles).  Layers that move no DRAM bytes (everything on chip) sit at the
right edge.  Rendering uses matplotlib's Agg backend (no display needed).
"""

from __future__ import annotations

import io

__all__ = ["roofline_png", "roof"]


def roof(intensity: float, peak: float, bandwidth: float | None) -> float:
    """Attainable MACs/cycle at ``intensity`` MACs/byte."""
    return peak if bandwidth is None else min(peak, intensity * bandwidth)


def roofline_png(layers, peak: float, bandwidth: float | None, title: str = "") -> bytes:
    """PNG bytes of the roofline of ``layers`` (:class:`gen.perf.LayerPerf`)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    pts = [(lp.name, lp.intensity, lp.macs / lp.cycles) for lp in layers
           if lp.macs and lp.cycles]
    finite = [x for _, x, _ in pts if x is not None]
    hi_x = max(finite + [peak / bandwidth if bandwidth else 1.0, 1.0]) * 4
    lo_x = min(finite + [peak / bandwidth if bandwidth else 1.0, 1.0]) / 4
    fig = Figure(figsize=(6.4, 4.4), dpi=100)
    ax = fig.add_subplot()
    xs = [lo_x * (hi_x / lo_x) ** (i / 200) for i in range(201)]
    ax.plot(xs, [roof(x, peak, bandwidth) for x in xs], color="black", lw=1.5,
            label=f"roof: {peak:g} MAC/cycle" + (f", {bandwidth:g} B/cycle" if bandwidth else ""))
    if bandwidth:
        ax.axvline(peak / bandwidth, color="grey", ls=":", lw=1)
    for name, x, y in pts:
        x = hi_x / 2 if x is None else x
        ax.scatter([x], [y], s=24, zorder=3)
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo_x, hi_x)
    ax.set_ylim(min([y for _, _, y in pts] + [peak]) / 4, peak * 2)
    ax.set_xlabel("arithmetic intensity (MACs per DRAM byte)")
    ax.set_ylabel("performance (MACs per cycle)")
    ax.set_title(title or "roofline", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
