"""A sweep's outputs in its directory, each written whole or not at all:
``results.csv`` (:mod:`nnloom.gen.sweep.table`), ``report.md``, the Pareto
figures (:mod:`nnloom.gen.sweep.plots`) and ``spec.toml`` (the spec that
made them)."""

from __future__ import annotations

from pathlib import Path

from nnloom.gen.verilog import write_atomic

from .plots import FIGURES, latency_of, pareto_front, pareto_png
from .spec import config_key, stage_config
from .stage import Stage
from .table import columns, rows, to_csv

__all__ = ["write_outputs", "markdown", "TABLE_NAME", "REPORT_NAME"]

TABLE_NAME = "results.csv"
REPORT_NAME = "report.md"


def _fmt(v, digits=4) -> str:
    if v is None or v == "":
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:,.{digits}g}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _md_table(head: list[str], body: list[list]) -> list[str]:
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(_fmt(c) for c in row) + " |" for row in body]
    return out


def markdown(result, table: list[dict], stages: list[Stage]) -> str:
    spec = result.spec
    n = len(result.points)
    done = len(result.records)
    lines = [f"# Sweep: {spec.source.name}", ""]
    lines.append(f"{n} points ({'grid' if spec.mode == 'grid' else f'random sample, seed {spec.seed}'}"
                 f" over {len(spec.networks)} network(s) x "
                 + " x ".join(f"{len(v)} {k}" for k, v in spec.axes.items())
                 + f"); stages: {', '.join(spec.stages)}.")
    where = (f"{result.workers} Dask worker(s)" if result.workers is not None else "this process")
    lines.append(f"{done} of {n} finished: {result.evaluated} evaluated in this run on {where} "
                 f"in {result.seconds:,.1f} s, {result.skipped} from earlier runs"
                 + (f"; {len(result.failed)} failed on the cluster (rerun to retry)"
                    if result.failed else "") + ".")
    lines += ["", "Table: `results.csv` (one row a point; `point` is the hash of its config)."]
    ycol, ylabel = latency_of(table)
    if "model" in spec.stages:
        lines += ["", "## The planner's choice per network and board", ""]
        body, seen = [], set()
        for r in table:
            key = (r["network"], r["board"], r["clock_mhz"], r["batch"])
            if key in seen:
                continue
            seen.add(key)
            mine = [q for q in table if (q["network"], q["board"], q["clock_mhz"],
                                         q["batch"]) == key]
            plan = [q for q in mine if q.get("model_planned")]
            p = plan[0] if plan else {}
            size = r.get("model_planned_size")
            body.append([r["network"], r["board"], r["clock_mhz"],
                         f"{size}x{size}" if size else "nothing fits",
                         "yes" if plan else ("-" if not size else "not in the sweep"),
                         p.get("model_cycles"), p.get(ycol), p.get("model_luts"),
                         p.get("model_energy_pj") and p["model_energy_pj"] / 1e3,
                         p.get("rtl_bit_exact"), p.get("fpga_fmax_mhz")])
        lines += _md_table(["network", "board", "clock MHz", "planned", "in sweep",
                            "compute cycles",
                            "latency us (" + ("RTL" if ycol.startswith("rtl") else "model") + ")",
                            "LUT4 est.",
                            "energy nJ", "RTL bit-exact", "fmax MHz"], body)
        lines += ["", "## Pareto fronts", "",
                  f"Latency: {ylabel}.  Only points that fit their board.", ""]
        for fig in FIGURES:
            lines.append(f"![{fig}]({fig})")
        lines.append("")
        body = []
        for board in sorted({r["board"] for r in table}):
            for net in sorted({r["network"] for r in table}):
                pts = [r for r in table if r["board"] == board and r["network"] == net
                       and r.get("model_fits") and r.get(ycol) is not None]
                for q in pareto_front(pts, lambda r: r["model_luts"], lambda r: r[ycol]):
                    body.append([board, net, f"{q['size']}x{q['size']}", q["clock_mhz"], q[ycol],
                                 q["model_luts"], q["model_energy_pj"] / 1e3,
                                 q.get("model_planned")])
        lines += ["Front of latency against LUT4s (estimate), per board and network:", ""]
        lines += _md_table(["board", "network", "array", "clock MHz", "latency us", "LUT4",
                            "energy nJ", "planned"], body)
    errors = []
    for r in table:
        for st in stages:
            e = r.get(f"{st.name}_error") or (r.get("rtl_bit_exact") is False and st.name == "rtl"
                                              and "outputs differ from the golden model")
            if e:
                errors.append([r["point"], r["network"], r["board"], r["size"], st.name, e])
    if errors:
        lines += ["", f"## Stage errors ({len(errors)})", ""]
        lines += _md_table(["point", "network", "board", "size", "stage", "error"], errors[:50])
        if len(errors) > 50:
            lines.append(f"... and {len(errors) - 50} more (the `*_error` columns of results.csv)")
    if result.failed:
        lines += ["", f"## Failed on the cluster ({len(result.failed)}; not stored, a rerun tries "
                  "them again)", ""]
        lines += _md_table(["point", "why"], [[k, v] for k, v in result.failed.items()][:50])
    lines += ["", "## Stage times", "",
              "Points that agree on what a stage reads share one evaluation (docs/sweeps.md).", ""]
    body = []
    recs = [result.records[p.key] for p in result.points if p.key in result.records]
    for st in stages:
        runs = {}
        for rec in recs:
            secs = rec["stages"].get(st.name, {}).get("seconds")
            if secs is not None:
                runs[config_key(stage_config(rec["config"], st))] = secs
        if runs:
            total = sum(runs.values())
            body.append([st.name, len(recs), len(runs), total / len(runs), total])
    lines += _md_table(["stage", "points", "evaluations", "mean s per evaluation",
                        "total s (wall, summed over workers)"], body)
    return "\n".join(lines) + "\n"


def write_outputs(result, out_dir, stages: dict[str, Stage]) -> list[Path]:
    """Write the table, the report, the figures (with the model stage) and
    the spec into ``out_dir``, each whole or not at all; returns their paths."""
    out_dir = Path(out_dir)
    chosen = [stages[n] for n in result.spec.stages]
    recs = [result.records[p.key] for p in result.points if p.key in result.records]
    table = rows(recs)
    files = {TABLE_NAME: to_csv(table, columns(table, chosen))}
    if "model" in result.spec.stages:
        title = f"{result.spec.source.name}: {len(table)} points"
        for fig in FIGURES:
            files[fig] = pareto_png(table, fig, title)
    files[REPORT_NAME] = markdown(result, table, chosen)
    files["spec.toml"] = result.spec.source.read_bytes()
    paths = []
    for name, data in files.items():
        write_atomic(out_dir / name, data)
        paths.append(out_dir / name)
    return paths
