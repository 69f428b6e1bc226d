"""``nnloom infer``: the golden model on inputs (docs/quantization.md)."""

from __future__ import annotations

import sys

from .common import Parser, UsageError, network_path

__all__ = ["run", "run_onnx"]


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
    parser.add_argument("--codes", action="store_true",
                        help="ONNX: write the last layer's integer codes (int8 / uint8, the model's type) "
                             "instead of the graph output")
    parser.add_argument("--graph-output", metavar="NAME",
                        help="ONNX: which graph output to write (default: the first)")
    args = parser.parse_args(argv)
    try:
        from nnloom.gen.frontend import load_model, load_network
        from nnloom.gen.frontend import QuantizeError, quantize
        from nnloom.gen.frontend import QuantizedNetwork
        from nnloom.sim.golden.qnet import run, run_float

        args.network = str(network_path(args.network))
        if args.network.lower().endswith(".onnx") and not args.float_:
            y, note = _infer_onnx(args)
            model = None
        else:
            model = load_model(args.network)
    except (NetworkError, QuantizeError, ValueError) as e:
        raise UsageError(f"{e}") from None
    if model is None:
        buf = io.BytesIO()
        np.save(buf, y)
        write_atomic(args.output, buf.getvalue())
        print(f"wrote {args.output}: {y.dtype} {list(y.shape)} ({note})", file=sys.stderr)
        return 0
    try:
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


def _infer_onnx(args):
    """An ONNX model as onnxruntime answers it: the graph output's type and values."""
    from nnloom.gen.frontend.loaders.onnx_import import read_onnx

    g = read_onnx(args.network)
    x = _load_npy(args.input, "--input")
    shape = tuple(g.net.input_shape)
    if x.shape != shape and x.shape[1:] != shape:
        raise UsageError(f"infer: {args.input}: expected shape {list(shape)} or [N, "
                         f"{', '.join(map(str, shape))}], got {list(x.shape)}")
    names = [name for name, _, _ in g.outputs]
    want = args.graph_output or names[0]
    if want not in names:
        raise UsageError(f"infer: --graph-output: expected one of {', '.join(names)}, got {want}")
    outs = run_onnx(g, x, codes=args.codes, flag=f"infer: {args.input}")
    y = outs[want]
    if g.qnet is None:
        note = "float model"
    else:
        note = (f"{'codes' if args.codes else 'output ' + want} of the model's own quantization, "
                f"last layer {g.out_dtype} scale {g.out_scale:.6g} zero point {g.out_zp}")
    return y, note


def run_onnx(g, x, codes=False, flag="input"):
    """``{graph output name: array}`` of an imported ONNX model (``read_onnx``)
    on ``x`` (one sample or a batch), as onnxruntime computes it.

    A quantized model: a float ``x`` is quantized as QuantizeLinear does
    (float32 ``x / scale``, round half to even, plus the zero point,
    saturated); an integer ``x`` must be codes of the model's own input type
    (int8 or uint8).  The golden integer model runs the layers; the last
    layer's codes are written in the model's type, or dequantized as
    DequantizeLinear does (float32 ``(q - zp) * scale``) when the graph's
    output is float.  ``codes``: every output is the last layer's codes.
    A float model runs the float reference (float64, written as float32).
    Host operations after the last layer (Softmax, ArgMax, ...) follow.
    """
    import numpy as np

    from nnloom.sim.golden.qnet import run, run_float

    x = np.asarray(x)
    shape = tuple(g.net.input_shape)
    single = x.shape == shape
    xb = x.reshape(-1, *shape)
    if g.qnet is None:
        if not np.issubdtype(x.dtype, np.floating):
            raise UsageError(f"{flag}: expected float values for a float model, got {x.dtype}")
        base = run_float(g.net, xb.astype(np.float64))[-1].astype(np.float32)
    else:
        dt = g.input_dtype
        if np.issubdtype(x.dtype, np.integer):
            if x.dtype != dt:
                raise UsageError(f"{flag}: expected {dt} codes (the model's input type) or float values, "
                                 f"got {x.dtype}")
            q = xb.astype(np.int64)
        elif g.input_codes:
            raise UsageError(f"{flag}: expected {dt} codes (the model's input is {dt}), got {x.dtype}")
        else:
            info = np.iinfo(dt)
            q = np.clip(np.rint(xb.astype(np.float32) / np.float32(g.input_scale)) + g.input_zp,
                        info.min, info.max).astype(np.int64)
        y = run(g.qnet, q - (128 if dt == np.uint8 else 0))[-1]
        base = (np.asarray(y, np.int64) + (128 if g.out_dtype == np.uint8 else 0)).astype(g.out_dtype)
    outs = {}
    for name, kind, tail in g.outputs:
        if g.qnet is not None and not codes and kind == "dq":
            v = (base.astype(np.int32) - np.int32(g.out_zp)).astype(np.float32) * np.float32(g.out_scale)
        else:
            v = base
        if tail and not codes:
            v = _tail(v, tail)
        outs[name] = v[0] if single and v.ndim and v.shape[0] == len(xb) and len(xb) == 1 else v
    return outs


def _tail(v, ops):
    """Host operations after the last layer, in numpy (see onnx_import.Tail)."""
    import numpy as np

    for op, *a in ops:
        if op == "softmax":
            e = np.exp(v.astype(np.float64) - v.max(axis=-1, keepdims=True))
            v = (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)
        elif op == "argmax":
            keep, last = a
            idx = (v.shape[-1] - 1 - np.argmax(v[..., ::-1], axis=-1)) if last else np.argmax(v, axis=-1)
            v = idx.astype(np.int64)[..., None] if keep else idx.astype(np.int64)
        elif op == "q":
            scale, zp, dt = a
            info = np.iinfo(dt)
            v = np.clip(np.rint(v.astype(np.float32) / np.float32(scale)) + zp, info.min, info.max).astype(dt)
        elif op == "dq":
            scale, zp = a
            v = (v.astype(np.int32) - np.int32(zp)).astype(np.float32) * np.float32(scale)
        elif op == "take":
            v = np.asarray(a[0])[v.reshape(-1)].reshape(1, -1)
        elif op == "reshape":
            v = v.reshape([v.shape[i] if d == 0 else d for i, d in enumerate(a[0])])
        elif op == "cast":
            v = v.astype(a[0])
        elif op == "zipmap":    # a list of {label: p} in onnxruntime; here the [N, classes] array
            v = v.astype(np.float32)
    return v


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
