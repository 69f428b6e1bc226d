"""``nnloom infer``: the golden model on inputs (docs/quantization.md)."""

from __future__ import annotations

import sys

from .common import Parser, UsageError, network_path

__all__ = ["run"]


def run(argv: list[str]) -> int:
    """Golden inference; see docs/quantization.md ("nnloom infer")."""
    import io

    import numpy as np

    from nnloom.gen.frontend import Network, NetworkError
    from nnloom.gen.verilog import write_atomic

    parser = Parser(prog="nnloom infer", description="Run the golden model: int8 for quantized "
                     "models, float otherwise. X holds one sample or a batch (batch axis first).")
    parser.add_argument("network", help="network file (.toml with weights, or .onnx)")
    parser.add_argument("--input", required=True, metavar="X.npy", help="input samples")
    parser.add_argument("-o", "--output", required=True, metavar="Y.npy", help="output file")
    parser.add_argument("--float", dest="float_", action="store_true", help="force the float reference")
    parser.add_argument("--format", choices=("int8", "qmn"), default="int8",
                        help="quantization of a float network (default int8)")
    parser.add_argument("--calibration", metavar="C.npy",
                        help="calibration inputs (default: digits training split for digits networks, else X)")
    parser.add_argument("--dequantize", action="store_true", help="write real values instead of int8 codes")
    args = parser.parse_args(argv)
    try:
        from nnloom.gen.frontend import load_model, load_network
        from nnloom.gen.frontend import QuantizeError, quantize
        from nnloom.gen.frontend import QuantizedNetwork
        from nnloom.sim.golden.qnet import run, run_float

        args.network = str(network_path(args.network))
        model = load_model(args.network)
        if isinstance(model, Network) and (not model.has_weights or model.layer_inputs is not None):
            raise NetworkError(args.network, "weights", "expected a network with weights to run, "
                               "got none (timing only)")
        x = _load_npy(args.input, "--input")
        shape = tuple(model.input_shape)
        if x.shape != shape and x.shape[1:] != shape:
            raise UsageError(f"infer: {args.input}: expected shape {list(shape)} or [N, "
                             f"{', '.join(map(str, shape))}], got {list(x.shape)}")
        note = ""
        if args.float_:
            net = load_network(args.network) if isinstance(model, QuantizedNetwork) else model
            y, note = run_float(net, x.astype(np.float64))[-1].astype(np.float32), "float"
        else:
            if isinstance(model, Network):
                calib, note = _calibration(model, x, args.calibration)
                model = quantize(model, calib, args.format)
            if np.issubdtype(x.dtype, np.integer) and not note:
                xq = x.astype(np.int64)          # int8 codes for an imported quantized model
                if xq.size and (xq.min() < -128 or xq.max() > 127):
                    raise UsageError(f"infer: {args.input}: expected int8 codes -128..127, "
                                     f"got {xq.min()}..{xq.max()}")
            else:
                xq = np.stack([model.quantize_input(s) for s in x.reshape(-1, *shape)]).reshape(x.shape)
            y = run(model, xq)[-1]
            y = model.dequantize_output(y).astype(np.float32) if args.dequantize else y.astype(np.int8)
            note = f"{model.fmt}{' ' + note if note else ''}, output scale {model.output_scale:.6g} " \
                   f"zero point {model.output_zp}"
    except (NetworkError, QuantizeError, ValueError) as e:
        raise UsageError(f"{e}") from None
    buf = io.BytesIO()
    np.save(buf, y)
    write_atomic(args.output, buf.getvalue())
    print(f"wrote {args.output}: {y.dtype} {list(y.shape)} ({note})", file=sys.stderr)
    return 0


def _load_npy(path, flag):
    import numpy as np

    try:
        x = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise UsageError(f"infer: {flag}: expected a readable .npy file, got {path!r} "
                         f"({e.__class__.__name__})") from None
    if not isinstance(x, np.ndarray) or not (np.issubdtype(x.dtype, np.integer)
                                             or np.issubdtype(x.dtype, np.floating)):
        raise UsageError(f"infer: {flag}: expected a numeric array, got {getattr(x, 'dtype', type(x))}")
    return x


def _calibration(net, x, path):
    """Calibration inputs and a note saying where they came from."""
    import numpy as np

    if path:
        c = _load_npy(path, "--calibration")
        return c.astype(np.float64).reshape(-1, *net.input_shape), f"calibrated on {path}"
    if int(np.prod(net.input_shape)) == 64 and net.output_shape == (10,):
        from nnloom.gen.train import digits_split

        return digits_split(0, net.input_shape)[0], "calibrated on the digits training split"
    return x.astype(np.float64).reshape(-1, *net.input_shape), "calibrated on the input"
