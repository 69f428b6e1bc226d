"""Network loaders: nnloom TOML, ONNX, TFLite, SCALE-Sim topology CSV.

``load_network(path)`` returns the float :class:`gen.network.Network` of
any of them (an int8 ONNX model gives its dequantized weights);
``load_model(path)`` returns the :class:`gen.qtypes.QuantizedNetwork` of a
quantized ONNX model or of an int8 TFLite model instead, and the Network
otherwise (a TFLite model's ``load_network`` is its dequantized float
chain, or a one-line refusal when it has none).  Every problem is a
:class:`nnloom.gen.frontend.network.NetworkError` of one line.
"""

from __future__ import annotations

from pathlib import Path

from nnloom.gen.frontend.network import NetworkError

__all__ = ["load_network", "load_model", "EXTENSIONS"]

EXTENSIONS = (".toml", ".onnx", ".tflite", ".csv")


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
    if path.suffix.lower() == ".tflite":
        from nnloom.gen.frontend.loaders.tflite_import import load_tflite

        return load_tflite(path)
    return load_network(path)


def load_network(path):
    """The float :class:`Network` described by a .toml, .onnx, .tflite or .csv file."""
    path = _check(path)
    ext = path.suffix.lower()
    if ext == ".toml":
        from nnloom.gen.frontend.loaders.toml_format import load_toml

        return load_toml(path)
    if ext == ".onnx":
        from nnloom.gen.frontend.loaders.onnx_import import load_onnx

        return load_onnx(path)[0]
    if ext == ".tflite":
        from nnloom.gen.frontend.loaders.tflite_import import load_tflite, to_network

        return to_network(load_tflite(path), str(path))
    from nnloom.gen.frontend.loaders.scalesim_csv import load_scalesim

    return load_scalesim(path)
