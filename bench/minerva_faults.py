"""Minerva's fault-tolerance study on scikit-learn's digits, with RTL points.

    python bench/minerva_faults.py [--seeds 10] [--trials 8] [--rtl-images 200] [--no-rtl]

1. Train a 64-32-32-10 ReLU MLP (scikit-learn ``MLPClassifier``) ``--seeds``
   times with different seeds; inputs are pixels / 16.
2. Quantize: weights and biases Q2.6 (Minerva's weight format, the words in
   the Razor SRAM), activations Q4.4 (digits' hidden activations reach ~8,
   so Minerva's Q2.4 saturates: 6-19% error instead of ~3%).  Biases are the
   last weight column, met by a constant input 1.0.  Inference is the golden
   model of the lanes (:func:`nnloom.sim.golden.minerva.fc_layer`), bit-exact.
3. Prune: the largest threshold (activation codes) whose mean error stays
   within the iso-training noise (ITN) of the unpruned model.
4. ITN: mean error ``mu`` and standard deviation ``sigma`` of the pruned
   quantized models over the seeds; bound = ``mu + sigma``.
5. Faults: each weight bit flips with probability ``p`` (persistent, before
   prediction, every flip flagged by Razor), ``p`` = 1e-5 .. 1e-1; masking
   none / word / bit (:mod:`nnloom.sim.golden.razor`), plus ``bit*`` (bit masking
   if the sign column never faulted, a what-if); error averaged over every
   model and ``--trials`` fault maps (the same maps for every mode).
6. Highest tolerable ``p`` per mode (last grid point before the mean error
   leaves the bound, and the log-interpolated crossing) and the ratios.
7. RTL points: the seed-0 model runs through the emitted Verilog of
   :class:`nnloom.hw.minerva.MinervaLanes` (4 lanes, Razor SRAMs with the persistent
   LFSR injector) on ``--rtl-images`` test images; the cocotb testbench holds
   every result beat equal to the golden model, and the RTL predictions'
   error is printed beside the curve.

Writes ``bench/out/minerva_faults.{png,json,md}``.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np


from nnloom.gen.frontend import QFormat  # noqa: E402
from nnloom.hw.minerva import MinervaConfig, MinervaLanes  # noqa: E402
from nnloom.sim.golden.minerva import fc_layer  # noqa: E402
from nnloom.sim.golden.razor import flip_faults, mask, rate_code, to_signed  # noqa: E402

W_FMT, A_FMT = QFormat(2, 6), QFormat(4, 4)
CFG = MinervaConfig(lanes=4, max_inputs=65, max_outputs=32, w_int=2, w_frac=6, a_int=4,
                    a_frac=4, acc_width=24, mode="runtime", injector="persistent",
                    rate_bits=16, seed=1)
BIAS = 1 << A_FMT.n            # the constant input 1.0 in Q4.4
MODES = ("none", "word", "bit")
CURVES = MODES + ("bit*",)
MINERVA = {"word/none": 10.0, "bit/word": 44.0, "bit p": 0.044}


def data():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    x, y = load_digits(return_X_y=True)
    return train_test_split(x / 16.0, y, test_size=0.3, random_state=0, stratify=y)


def train(xtr, ytr, seeds):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    models = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for s in range(seeds):
            clf = MLPClassifier((32, 32), alpha=1e-2, max_iter=400, random_state=s).fit(xtr, ytr)
            models.append([W_FMT.quantize(np.hstack([w.T, b[:, None]]))
                           for w, b in zip(clf.coefs_, clf.intercepts_)])
    return models


def forward(layers, xq, threshold):
    """Predictions of quantized ``layers`` (codes, bias last) on input codes."""
    x = xq
    for w in layers:
        acc, x, _ = fc_layer(np.hstack([x, np.full((len(x), 1), BIAS)]), w, threshold, CFG)
    return acc.argmax(axis=1)


def skipped_fraction(layers, xq, threshold):
    x, skipped, total = xq, 0, 0
    for w in layers:
        xa = np.hstack([x, np.full((len(x), 1), BIAS)])
        skipped += int((np.abs(xa) < threshold).sum()) * w.shape[0]
        total += xa.size * w.shape[0]
        _, x, _ = fc_layer(xa, w, threshold, CFG)
    return skipped / total


def faulty(layers, p, rng):
    """One fault map per layer, and the weights each mode reads.  ``bit*`` is
    bit masking with a fault-free sign column (what-if: only the sign column
    kept at a safe voltage), which isolates the cost of the sign policy."""
    out = {m: [] for m in CURVES}
    width = W_FMT.width
    sign = 1 << (width - 1)
    for w in layers:
        bits = w & ((1 << width) - 1)
        read, flags = flip_faults(bits, width, p, rng)
        for m in MODES:
            out[m].append(to_signed(mask(read, flags, width, m), width))
        f = flags & ~sign
        out["bit*"].append(to_signed(mask(bits ^ f, f, width, "bit"), width))
    return out


def tolerable(rates, errors, bound):
    """Last grid rate before the error leaves the bound, and the crossing
    interpolated in log(rate)."""
    above = np.flatnonzero(errors > bound)
    if not len(above):
        return rates[-1], rates[-1]
    k = above[0]
    if k == 0:
        return 0.0, rates[0]
    e0, e1 = errors[k - 1], errors[k]
    t = (bound - e0) / (e1 - e0)
    return rates[k - 1], float(np.exp(np.log(rates[k - 1]) + t * (np.log(rates[k]) - np.log(rates[k - 1]))))


def rtl_point(layers, xq, yte, threshold, mode, p, images, outdir):
    """Run the RTL (lanes + Razor SRAMs, LFSR persistent faults) on ``images``
    test vectors; the testbench asserts bit-exactness against the golden model."""
    from nnloom.sim.runner import run
    out = outdir / f"rtl_{mode}_{p:.0e}.json"
    net = {"layers": [w.tolist() for w in layers], "inputs": xq[:images].tolist(),
           "bias": BIAS, "threshold": threshold, "mode": mode,
           "rate": rate_code(p, CFG.rate_bits)}
    t0 = time.time()
    run(MinervaLanes(CFG), "nnloom.sim.tb.minerva_tb", testcase="network",
        params={"config": CFG.to_dict(), "seed": 5, "network": net},
        extra_env={"NNLOOM_MINERVA_OUT": str(out.resolve())})
    res = json.loads(out.read_text())
    err = float(np.mean(np.asarray(res["pred"]) != yte[:images]))
    return {"mode": mode, "p": p, "p_lfsr": net["rate"] / ((1 << CFG.rate_bits) - 1),
            "images": images, "rtl_error": err, "faulty_reads": int(sum(res["faulty_reads"])),
            "reads": int(sum(res["reads"])), "seconds": round(time.time() - t0, 1)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--rtl-images", type=int, default=200)
    ap.add_argument("--no-rtl", action="store_true")
    ap.add_argument("--out", default=str(Path(__file__).parent / "out"))
    args = ap.parse_args(argv)
    outdir = Path(args.out)
    outdir.mkdir(parents=True, exist_ok=True)

    xtr, xte, ytr, yte = data()
    xq = A_FMT.quantize(xte)
    models = train(xtr, ytr, args.seeds)
    err = lambda layers, thr: float(np.mean(forward(layers, xq, thr) != yte))  # noqa: E731

    base = np.array([err(m, 0) for m in models])
    threshold = 0
    for thr in range(1, BIAS + 1):   # the bias input (1.0) is never pruned
        if np.mean([err(m, thr) for m in models]) <= base.mean() + base.std():
            threshold = thr
    errs0 = np.array([err(m, threshold) for m in models])
    mu, sigma = errs0.mean(), errs0.std()
    bound = mu + sigma
    skip = np.mean([skipped_fraction(m, xq, threshold) for m in models])
    print(f"digits 64-32-32-10, {args.seeds} seeds: unpruned error {base.mean():.4f}"
          f" (sigma {base.std():.4f}); threshold {threshold} codes"
          f" ({threshold / BIAS:.4g}) prunes {skip:.1%} of MACs; error {mu:.4f},"
          f" ITN sigma {sigma:.4f}, bound {bound:.4f}")

    rates = np.logspace(-5, -1, 33)
    curve = {m: np.zeros(len(rates)) for m in CURVES}
    rng = np.random.default_rng(2016)
    for k, p in enumerate(rates):
        for layers in models:
            for _ in range(args.trials):
                read = faulty(layers, p, rng)
                for m in CURVES:
                    curve[m][k] += np.mean(forward(read[m], xq, threshold) != yte)
        for m in CURVES:
            curve[m][k] /= len(models) * args.trials
    tol = {m: tolerable(rates, curve[m], bound) for m in CURVES}

    print(f"\n{'p':>9} " + " ".join(f"{m:>7}" for m in CURVES))
    for k, p in enumerate(rates):
        print(f"{p:9.2e} " + " ".join(f"{curve[m][k]:7.4f}" for m in CURVES))
    rows = [("highest tolerable p (grid)", *[f"{tol[m][0]:.2e}" for m in CURVES]),
            ("crossing (log-interp.)", *[f"{tol[m][1]:.2e}" for m in CURVES])]
    print("\n" + "\n".join(f"{r[0]:28s} " + " ".join(f"{v:>9}" for v in r[1:]) for r in rows))
    ratios = {"word/none": tol["word"][1] / tol["none"][1],
              "bit/word": tol["bit"][1] / tol["word"][1], "bit p": tol["bit"][1],
              "bit*/word": tol["bit*"][1] / tol["word"][1], "bit* p": tol["bit*"][1]}
    print(f"ratios (interpolated): word/none {ratios['word/none']:.1f}x (Minerva ~10x), "
          f"bit/word {ratios['bit/word']:.1f}x (Minerva 44x), bit masking tolerates "
          f"{ratios['bit p']:.2%} of bitcells (Minerva 4.4%); with a fault-free sign "
          f"column bit*/word {ratios['bit*/word']:.1f}x, {ratios['bit* p']:.2%} of bitcells")

    rtl = []
    if not args.no_rtl:
        points = [("none", 3e-4), ("word", 3e-3), ("bit", 1e-2), ("bit", 1e-1)]
        for mode, p in points:
            r = rtl_point(models[0], xq, yte, threshold, mode, p, args.rtl_images, outdir)
            k = int(np.argmin(np.abs(np.log(rates) - np.log(r["p_lfsr"]))))
            r["curve_error"] = float(curve[mode][k])
            rtl.append(r)
            print(f"RTL {mode:4s} p={r['p_lfsr']:.2e}: {r['images']} images, "
                  f"{r['faulty_reads']}/{r['reads']} faulty reads, error {r['rtl_error']:.4f} "
                  f"(bit-exact to golden; curve mean {r['curve_error']:.4f}) [{r['seconds']} s]")

    _plot(rates, curve, bound, mu, tol, rtl, outdir / "minerva_faults.png")
    summary = {"seeds": args.seeds, "trials": args.trials, "threshold": threshold,
               "pruned": skip, "mu": mu, "sigma": sigma, "bound": bound,
               "rates": rates.tolist(), "curve": {m: curve[m].tolist() for m in CURVES},
               "tolerable": tol, "ratios": ratios, "minerva": MINERVA, "rtl": rtl}
    (outdir / "minerva_faults.json").write_text(json.dumps(summary, indent=1))
    print(f"\nwrote {outdir / 'minerva_faults.png'} and minerva_faults.json")


def _plot(rates, curve, bound, mu, tol, rtl, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    colors = {"none": "tab:red", "word": "tab:orange", "bit": "tab:blue", "bit*": "tab:cyan"}
    for m in CURVES:
        ax.semilogx(rates, 100 * curve[m], "-o", ms=3, color=colors[m],
                    label=f"{m} masking (tolerates p <= {tol[m][1]:.1e})")
    for r in rtl:
        ax.semilogx([r["p_lfsr"]], [100 * r["rtl_error"]], "k*", ms=10)
    if rtl:
        ax.plot([], [], "k*", label="RTL points (lanes + Razor SRAM)")
    ax.axhline(100 * bound, color="gray", ls="--", label="ITN bound (mean + sigma)")
    ax.set_xlabel("weight bit fault probability")
    ax.set_ylabel("test error (%)")
    ax.set_ylim(0, 100)
    ax.set_title("Minerva-style fault masking, digits 64-32-32-10, Q2.6 weights")
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


if __name__ == "__main__":
    main()
