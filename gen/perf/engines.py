"""Per-layer hooks that put the Eyeriss and EIE models into :mod:`nnloom.gen.perf.model`.

Each hook takes ``(layer, in_shape, **options)`` and returns the dict that
:func:`nnloom.gen.perf.model.network_perf` turns into a :class:`nnloom.gen.perf.model.LayerPerf`.  The
engines' own models are imported on first use; if one is missing, or a
layer cannot run on the engine, :class:`nnloom.gen.perf.model.EngineUnavailable` says so
in one line.  Units follow docs/perf.md: ``rf`` and ``array`` in accesses,
``buffer`` and ``dram`` in bytes.

Eyeriss RS (:mod:`nnloom.gen.compiler.eyeriss_map`)
    A conv layer is an Eyeriss ``ConvLayer``; an fc layer is a 1 x 1
    convolution of a 1 x 1 image with K channels and N filters.  The mapping
    is :func:`nnloom.gen.compiler.eyeriss_map.choose_mapping` (lowest modelled energy) and
    the figures :func:`nnloom.gen.compiler.eyeriss_map.predict` (exact against the RTL),
    global-buffer limits off (the analytical model of larger layers).
    Options: ``config`` (an ``EyerissConfig``; default the Eyeriss chip's
    12 x 14 array with 12-bit layer fields).  Words are ``data_width`` bits.

EIE (:mod:`nnloom.gen.perf.eie`)
    fc layers only.  The entry counts come from a random sparse matrix of
    ``weight_density`` (default 0.1, Deep Compression's ~10 % for fc
    layers), seeded; the activation vector has ``act_density`` non-zeros
    (default 1.0).  Cycles are :func:`nnloom.gen.perf.eie.simulate_layer`'s.
    ``macs`` are the entries issued (fillers included), not the dense MACs.
    Weights stay on chip, so DRAM carries only the 16-bit activations in
    and out.  Options: ``config`` (an ``EIEConfig``), ``weight_density``,
    ``act_density``, ``seed``.

Pooling, ReLU and flatten are not run by either array: 0 cycles, with a note.
"""

from __future__ import annotations

import importlib
import math

from nnloom.gen.perf.model import EngineUnavailable

__all__ = ["eyeriss_layer", "eie_layer"]


def _module(engine: str, name: str):
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name not in (name, name.rsplit(".", 1)[0]):
            raise
        raise EngineUnavailable(f"engine {engine!r} is unavailable: its model {name} "
                                "is not installed yet") from None


def _passive(layer) -> dict:
    return {"macs": 0, "cycles": 0, "pes": 1, "dram_bytes": 0,
            "note": f"{layer.kind}: not run on the array (0 cycles)"}


def eyeriss_layer(layer, in_shape, config=None, costs=None, **_ignored) -> dict:
    if layer.kind not in ("conv", "fc"):
        return _passive(layer)
    em = _module("eyeriss", "nnloom.gen.compiler.eyeriss_map")
    try:
        if config is None:
            config = importlib.import_module("nnloom.hw.eyeriss_pe").EyerissConfig(dim_width=12)
        if layer.kind == "conv":
            c, h, w = in_shape
            conv = em.ConvLayer(layer.name, h, w, c, layer.out_channels, *layer.kernel,
                                stride=layer.stride, padding=layer.padding)
        else:
            conv = em.ConvLayer(layer.name, 1, 1, in_shape[0], layer.out_features, 1, 1)
        mapping = em.choose_mapping(config, conv, check_glb=False)
        pred = em.predict(config, conv, mapping)
    except (AttributeError, TypeError) as e:
        raise EngineUnavailable(f"engine 'eyeriss' is unavailable: gen.eyeriss_map does not "
                                f"offer the expected API ({e})") from None
    except ValueError as e:  # MappingError: the layer does not fit the array
        raise EngineUnavailable(f"engine 'eyeriss' cannot run layer {layer.name}: {e}") from None
    word = math.ceil(config.data_width / 8)
    acc = pred.accesses()
    return {"macs": pred.total_macs, "cycles": pred.cycles, "pes": pred.pes,
            "dram_bytes": pred.dram * word,
            "reads": {"rf": acc["rf"], "array": acc["array"], "buffer": acc["buffer"] * word,
                      "dram": pred.dram * word},
            "note": f"RS p={mapping.p} q={mapping.q}, {pred.utilization:.0%} busy"}


def eie_layer(layer, in_shape, config=None, weight_density=0.1, act_density=1.0, seed=0,
              **_ignored) -> dict:
    if layer.kind == "conv":
        raise EngineUnavailable(f"engine 'eie' runs fc layers only; layer {layer.name} is conv")
    if layer.kind != "fc":
        return _passive(layer)
    import numpy as np

    ep = _module("eie", "nnloom.gen.perf.eie")
    try:
        if config is None:
            config = importlib.import_module("nnloom.hw.eie_config").EIEConfig()
        rng = np.random.default_rng(seed)
        k, n = in_shape[0], layer.out_features
        counts = ep.random_counts(rng, n, k, config.pes, weight_density)
        act = (rng.random(k) < act_density).astype(np.int64)
        t = ep.simulate_layer(config, counts, act, n)
    except (AttributeError, TypeError) as e:
        raise EngineUnavailable(f"engine 'eie' is unavailable: gen.eie_perf does not offer "
                                f"the expected API ({e})") from None
    word = math.ceil(config.act_width / 8)
    return {"macs": t.entries, "cycles": t.cycles, "compute_cycles": t.cycles, "pes": t.pes,
            "dram_bytes": (k + n) * word,
            "reads": {"rf": t.entries, "array": t.broadcasts * t.pes, "buffer": t.entries,
                      "dram": k * word},
            "writes": {"rf": t.entries, "buffer": n * word, "dram": n * word},
            "note": f"{t.entries} entries of {k * n} dense MACs, balance {t.efficiency:.0%}"}
