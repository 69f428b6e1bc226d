"""Network loaders: nnloom TOML, ONNX, SCALE-Sim topology CSV.

``load_network(path)`` returns the float :class:`gen.network.Network` of
any of them (an int8 ONNX model gives its dequantized weights);
``load_model(path)`` returns the :class:`gen.qtypes.QuantizedNetwork` of a
quantized ONNX model instead, and the Network otherwise.  Every problem is a
:class:`nnloom.gen.frontend.network.NetworkError` of one line.
"""

from __future__ import annotations

from pathlib import Path

from nnloom.gen.frontend.network import NetworkError

__all__ = ["load_network", "load_model", "EXTENSIONS"]

EXTENSIONS = (".toml", ".onnx", ".csv")


def _check(path) -> Path:
    path = Path(path)
    if path.suffix.lower() not in EXTENSIONS:
        raise NetworkError(str(path), "file", f"expected a {', '.join(EXTENSIONS)} file, "
                           f"got {path.suffix or 'no extension'!r}")
    if not path.is_file():
        raise NetworkError(str(path), "file", "expected an existing file, got no such file")
    return path


def load_model(path):
    """``QuantizedNetwork`` for a quantized ONNX model, else the ``Network``."""
    path = _check(path)
    if path.suffix.lower() == ".onnx":
        from nnloom.gen.frontend.loaders.onnx_import import load_onnx

        net, qnet = load_onnx(path)
        return qnet if qnet is not None else net
    return load_network(path)


def load_network(path):
    """The float :class:`Network` described by a .toml, .onnx or .csv file."""
    path = _check(path)
    ext = path.suffix.lower()
    if ext == ".toml":
        from nnloom.gen.frontend.loaders.toml_format import load_toml

        return load_toml(path)
    if ext == ".onnx":
        from nnloom.gen.frontend.loaders.onnx_import import load_onnx

        return load_onnx(path)[0]
    from nnloom.gen.frontend.loaders.scalesim_csv import load_scalesim

    return load_scalesim(path)
