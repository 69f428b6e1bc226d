"""The sweep spec (a TOML file) and its points.

```toml
networks = ["digits_mlp", "lenet_digits"]   # shipped examples, or files beside the spec
stages = ["model", "rtl"]                   # model | rtl | fpga, in any combination

[axes]                                      # each a list; the grid is their product
board = ["icebreaker", "ulx3s-85f"]         # default: the planner's default board
size = [2, 4, 8]                            # array side P (default: every side generated)
batch = [1]                                 # default [1]
clock_mhz = ["board", 50]                   # "board": the board's clock (default)

[sample]                                    # optional: a seeded random sample of the grid
mode = "random"                             # grid (default) | random
points = 20
seed = 0

[rtl]                                       # a stage's options (defaults in docs/sweeps.md)
samples = 2
```

:func:`load_spec` checks every field: a bad one is one
:class:`SpecError` line, ``<file>: <field>: expected <allowed>, got
<value>``.  Each :class:`Point` carries its full config (the nnloom
version, the network's name and a digest of its files, the axis values,
and the options of every stage it runs) and :attr:`Point.key`, a hash of
that config: the sweep stores results under it, and a rerun skips the
keys it has.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import random
import tomllib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from nnloom.gen.accelerator import ARRAY_SIDES, BATCHES
from nnloom.gen.planner import BOARDS, DEFAULT_BOARD
from nnloom.hw.errors import InputError

from .stage import Stage

__all__ = ["SpecError", "Spec", "NetworkEntry", "Point", "load_spec", "config_key",
           "stage_config", "digest_files", "AXES", "MAX_POINTS"]

#: Most points one spec may ask for (a grid this large is a typo).
MAX_POINTS = 100_000


class SpecError(InputError):
    """A bad sweep spec: one line naming the file and the field."""


def _version() -> str:
    try:
        return metadata.version("nnloom")
    except metadata.PackageNotFoundError:       # a source tree that was never installed
        return "0+unknown"


def config_key(config: dict) -> str:
    """The hash of a config: 16 hex digits of the SHA-256 of its canonical JSON."""
    text = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


#: axis -> (allowed values as the error line says them, check, default values)
AXES = {
    "board": (" | ".join(BOARDS), lambda v: v in BOARDS, (DEFAULT_BOARD,)),
    "size": ("2 or a multiple of 4 in 4..32", lambda v: _is_int(v) and v in ARRAY_SIDES,
             ARRAY_SIDES),
    "batch": (f"an integer in {BATCHES[0]}..{BATCHES[-1]}",
              lambda v: _is_int(v) and v in BATCHES, (1,)),
    "clock_mhz": ('"board" or a number > 0 (MHz)',
                  lambda v: v == "board" or (_is_number(v) and v > 0), ("board",)),
}


@dataclass(frozen=True)
class NetworkEntry:
    """A network of the spec: its ``name`` (the network's own), the file
    it came from, ``digest`` (SHA-256 of the file and, for TOML, its
    weights file: 16 hex digits), and the loaded ``network``."""

    name: str
    path: Path
    digest: str
    network: object = dataclasses.field(repr=False, compare=False)


@dataclass(frozen=True)
class Point:
    """One point of the sweep: ``config`` (JSON values; its hash is
    :attr:`key`) and the network it runs."""

    config: dict
    network: NetworkEntry = dataclasses.field(repr=False, compare=False)

    @property
    def key(self) -> str:
        return config_key(self.config)

    def stage_config(self, stage: Stage) -> dict:
        """What ``stage``'s result depends on (:func:`stage_config`)."""
        return stage_config(self.config, stage)

    def stage_key(self, stage: Stage) -> str:
        return config_key(self.stage_config(stage))


def stage_config(config: dict, stage: Stage) -> dict:
    """What ``stage``'s result depends on, of a point's ``config``: the
    version, the network, the fields the stage reads, and its own options."""
    return {"nnloom": config["nnloom"], "network": config["network"], "stage": stage.name,
            **{f: config[f] for f in stage.reads}, "options": config["stages"][stage.name]}


@dataclass(frozen=True)
class Spec:
    """A checked sweep spec: ``source`` file, ``networks``, ``axes`` (name
    -> values), ``stages`` (name -> checked options, in run order), the
    ``mode`` (``grid`` or ``random``) with ``points`` and ``seed``."""

    source: Path
    networks: tuple[NetworkEntry, ...]
    axes: dict
    stages: dict
    mode: str = "grid"
    points_wanted: int | None = None
    seed: int = 0

    @property
    def grid_size(self) -> int:
        n = len(self.networks)
        for values in self.axes.values():
            n *= len(values)
        return n

    def points(self) -> list[Point]:
        """The points, in grid order (a random sample keeps that order)."""
        version = _version()
        combos = list(itertools.product(self.networks, *self.axes.values()))
        if self.mode == "random":
            pick = sorted(random.Random(self.seed).sample(range(len(combos)), self.points_wanted))
            combos = [combos[i] for i in pick]
        out, seen = [], set()
        for entry, *values in combos:
            c = dict(zip(self.axes, values))
            if c["clock_mhz"] == "board":
                c["clock_mhz"] = float(BOARDS[c["board"]].budget.clock_mhz)
            else:
                c["clock_mhz"] = float(c["clock_mhz"])
            config = {"nnloom": version, "network": {"name": entry.name, "digest": entry.digest},
                      **c, "stages": self.stages}
            point = Point(config, entry)
            if point.key not in seen:       # "board" and the board's own clock are one point
                seen.add(point.key)
                out.append(point)
        return out


def _fail(src, field, expected, got):
    raise SpecError(f"{src}: {field}: expected {expected}, got {got!r}")


def _table(src, doc, name, allowed):
    value = doc.get(name, {})
    if not isinstance(value, dict):
        _fail(src, name, f"a table [{name}]", value)
    for key in value:
        if key not in allowed:
            _fail(src, f"{name}.{key}", f"one of {', '.join(allowed)}", key)
    return value


def digest_files(path: Path) -> str:
    """16 hex digits of the SHA-256 of a network file and, for a TOML
    network, of the weights file it names."""
    h = hashlib.sha256(path.read_bytes())
    if path.suffix == ".toml":
        try:
            weights = tomllib.loads(path.read_text()).get("weights")
        except (tomllib.TOMLDecodeError, UnicodeDecodeError):
            weights = None          # the loader reports the file
        if isinstance(weights, str) and (path.parent / weights).is_file():
            h.update(b"\0weights\0" + (path.parent / weights).read_bytes())
    return h.hexdigest()[:16]


def _network(src: Path, i: int, text, needs_weights: list[str]) -> NetworkEntry:
    from nnloom import examples
    from nnloom.gen.frontend import load_network

    field = f"networks[{i}]"
    if not isinstance(text, str) or not text:
        _fail(src, field, "a network file or a shipped example's name", text)
    path = src.parent / text
    if not path.is_file():
        if Path(text).suffix:
            _fail(src, field, f"a network file (relative to {src.parent}) or one of the "
                  f"shipped examples ({', '.join(examples.names())})", text)
        try:
            path = examples.path(text)
        except FileNotFoundError:
            _fail(src, field, f"a network file or one of the shipped examples "
                  f"({', '.join(examples.names())})", text)
    network = load_network(path)    # its own errors name the network file and field
    if needs_weights and not network.has_weights:
        _fail(src, field, f"a network with trained weights for the {needs_weights[0]} stage",
              f"{text} (timing only)")
    return NetworkEntry(network.name, path, digest_files(path), network)


def load_spec(path, stages: dict[str, Stage]) -> Spec:
    """Read and check the spec at ``path``; ``stages`` are the stages this
    installation runs (name -> :class:`Stage`).  Raises :class:`SpecError`."""
    src = Path(path)
    try:
        doc = tomllib.loads(src.read_text())
    except FileNotFoundError:
        raise SpecError(f"{src}: file: expected a sweep spec (TOML), got no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise SpecError(f"{src}: file: expected a readable TOML file, got "
                        f"{e.__class__.__name__}") from None
    except tomllib.TOMLDecodeError as e:
        raise SpecError(f"{src}: file: expected TOML, got a syntax error ({e})") from None
    top = ("networks", "stages", "axes", "sample", *stages)
    for key in doc:
        if key not in top:
            _fail(src, key, f"one of {', '.join(top)}", key)

    names = doc.get("stages", ["model"])
    if not isinstance(names, list) or not names:
        _fail(src, "stages", f"a non-empty list of {' | '.join(stages)}", names)
    for i, name in enumerate(names):
        if name not in stages:
            _fail(src, f"stages[{i}]", " | ".join(stages), name)
        if names.index(name) != i:
            _fail(src, f"stages[{i}]", "each stage once", name)
    chosen = {name: stages[name] for name in stages if name in names}   # run order: the registry's
    options = {}
    for name, stage in stages.items():
        table = _table(src, doc, name, list(stage.options))
        if name not in chosen:
            continue
        opts = {}
        for key, opt in stage.options.items():
            value = table.get(key, opt.default)
            if not opt.check(value):
                _fail(src, f"{name}.{key}", opt.expected, value)
            opts[key] = value
        options[name] = opts

    nets = doc.get("networks")
    if not isinstance(nets, list) or not nets:
        _fail(src, "networks", "a non-empty list of network files or shipped examples", nets)
    weighted = [s.name for s in chosen.values() if s.needs_weights]
    entries = tuple(_network(src, i, n, weighted) for i, n in enumerate(nets))
    digests = [e.digest for e in entries]
    for i, d in enumerate(digests):
        if digests.index(d) != i:
            _fail(src, f"networks[{i}]", "each network once", nets[i])

    table = _table(src, doc, "axes", list(AXES))
    axes = {}
    for name, (expected, check, default) in AXES.items():
        values = table.get(name, list(default))
        if not isinstance(values, list) or not values:
            _fail(src, f"axes.{name}", f"a non-empty list of {expected}", values)
        for i, v in enumerate(values):
            if not check(v):
                _fail(src, f"axes.{name}[{i}]", expected, v)
            if values.index(v) != i:
                _fail(src, f"axes.{name}[{i}]", "each value once", v)
        axes[name] = tuple(values)

    sample = _table(src, doc, "sample", ["mode", "points", "seed"])
    mode = sample.get("mode", "grid")
    if mode not in ("grid", "random"):
        _fail(src, "sample.mode", "grid | random", mode)
    seed = sample.get("seed", 0)
    if not _is_int(seed) or seed < 0:
        _fail(src, "sample.seed", "an integer >= 0", seed)
    spec = Spec(src, entries, axes, options, mode, None, seed)
    grid = spec.grid_size
    wanted = sample.get("points")
    if mode == "random":
        if not _is_int(wanted) or not 1 <= wanted <= min(grid, MAX_POINTS):
            _fail(src, "sample.points", f"an integer in 1..{min(grid, MAX_POINTS)} (the grid "
                  f"has {grid} points)", wanted)
        spec = dataclasses.replace(spec, points_wanted=wanted)
    else:
        if wanted is not None:
            _fail(src, "sample.points", "no value with mode = \"grid\" (the grid's points)", wanted)
        if grid > MAX_POINTS:
            _fail(src, "axes", f"a grid of at most {MAX_POINTS:,} points (or [sample] mode = "
                  "\"random\")", f"{grid:,} points")
    return spec
