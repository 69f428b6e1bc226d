"""TFLite import: the IR it builds, its one-line refusals, the float network,
``nnloom infer`` / ``nnloom plan`` and the compiler's refusal."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nnloom.gen.cli import main
from nnloom.gen.frontend import NetworkError, QuantizedNetwork, load_model, load_network, run_float

MODELS = Path(__file__).resolve().parents[3].parent / "shared" / "models" / "mlperf-tiny"


def _model(name) -> Path:
    pytest.importorskip("tflite", reason="the tflite package is not installed")
    path = MODELS / f"{name}.tflite"
    if not path.is_file():
        pytest.skip(f"the MLPerf Tiny models are not at {MODELS} (../shared/models/ absent)")
    return path


def _one_line(capsys, argv, *needles):
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nnloom: ") and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.mark.parametrize("name,kinds,shape,macs", [
    ("ad01_int8", {"fc": 10}, (640,), 264_192),
    ("kws_ref_model", {"conv": 5, "dwconv": 4, "avgpool": 1, "flatten": 1, "fc": 1}, (1, 49, 10),
     2_656_768),
    ("vww_96_int8", {"conv": 14, "dwconv": 13, "avgpool": 1, "flatten": 1, "fc": 1}, (3, 96, 96),
     7_489_664),
    ("pretrainedResnet_quant", {"conv": 9, "add": 3, "avgpool": 1, "flatten": 1, "fc": 1},
     (3, 32, 32), 12_501_632),
])
def test_import(name, kinds, shape, macs):
    qnet = load_model(_model(name))
    assert isinstance(qnet, QuantizedNetwork) and qnet.rounding == "tflite"
    assert qnet.input_shape == shape and qnet.softmax == (name != "ad01_int8")
    got = {}
    for ql in qnet.layers:
        got[ql.kind] = got.get(ql.kind, 0) + 1
    assert got == kinds
    assert qnet.sequential == (name != "pretrainedResnet_quant")
    net = load_network(_model(name))
    assert net.macs() == macs                    # the MLPerf Tiny README's figures
    assert net.output_shape == qnet.layers[-1].out_shape


def test_kws_padding_is_tflite_same():
    qnet = load_model(_model("kws_ref_model"))
    first = qnet.layers[0]                        # 10 x 4, stride 2, SAME on 49 x 10
    assert first.kernel == (10, 4) and first.stride == 2 and first.pads == (4, 5, 1, 1)
    assert qnet.layers[9].kernel == (25, 5)      # global average pool
    vww = load_model(_model("vww_96_int8"))
    assert vww.layers[3].pads == (0, 1, 0, 1)    # 3 x 3, stride 2 on 48 x 48


def test_float_network_tracks_the_golden_model_on_the_ad_sample():
    path = _model("ad01_int8")
    qnet, net = load_model(path), load_network(path)
    frames = np.fromfile(MODELS / "ad01_normal_id_01_00000000_hist_librosa.bin", np.float32)
    x = np.stack([frames.reshape(200, 128)[i:i + 5].reshape(-1) for i in range(0, 196, 7)])
    from nnloom.sim.golden.qnet import run

    xq = np.stack([qnet.quantize_input(s) for s in x])
    yq = qnet.dequantize_output(run(qnet, xq)[-1])
    yf = run_float(net, (xq - qnet.input_zp) * qnet.input_scale)[-1]
    # int8 through ten layers: within a few output steps, on average well within one
    assert np.mean(np.abs(yq - yf)) < 0.5 * qnet.output_scale * 4
    assert np.corrcoef(yq.reshape(-1), yf.reshape(-1))[0, 1] > 0.99


def _patched(tmp_path, name, old, new):
    """The model with the operator code ``old`` replaced by ``new`` (both fields)."""
    import tflite

    path = _model(name)
    buf = bytearray(path.read_bytes())
    m = tflite.Model.GetRootAsModel(buf, 0)
    for i in range(m.OperatorCodesLength()):
        oc = m.OperatorCodes(i)
        if max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode()) == old:
            tab = oc._tab
            o = tab.Offset(4)                    # deprecated_builtin_code: int8
            buf[tab.Pos + o] = new
            o = tab.Offset(10)                   # builtin_code: int32
            if o:
                buf[tab.Pos + o:tab.Pos + o + 4] = int(new).to_bytes(4, "little")
    out = tmp_path / f"{name}_patched.tflite"
    out.write_bytes(bytes(buf))
    return out


def test_unsupported_operator_is_one_line(tmp_path, capsys):
    import tflite

    path = _patched(tmp_path, "kws_ref_model", tflite.BuiltinOperator.SOFTMAX,
                    tflite.BuiltinOperator.LOGISTIC)
    with pytest.raises(NetworkError, match=r"operator 12 \(LOGISTIC\): expected one of the "
                                           r"supported operators CONV_2D, .*, got LOGISTIC"):
        load_model(path)
    np.save(tmp_path / "x.npy", np.zeros((1, 49, 10), np.int8))
    _one_line(capsys, ["infer", str(path), "--input", str(tmp_path / "x.npy"), "-o",
                       str(tmp_path / "y.npy")], str(path), "operator 12 (LOGISTIC)", "CONV_2D")


def test_not_a_flatbuffer(tmp_path, capsys):
    pytest.importorskip("tflite")
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"not a model")
    _one_line(capsys, ["plan", str(bad), "--board", "icebreaker"], "bad.tflite", "file",
              "expected a TFLite flatbuffer")


def test_infer_cli_matches_golden(tmp_path, capsys):
    path = _model("kws_ref_model")
    x = np.random.default_rng(0).integers(-128, 128, (3, 1, 49, 10)).astype(np.int8)
    np.save(tmp_path / "x.npy", x)
    assert main(["infer", str(path), "--input", str(tmp_path / "x.npy"), "-o",
                 str(tmp_path / "y.npy")]) == 0
    from nnloom.sim.golden.qnet import run

    y = np.load(tmp_path / "y.npy")
    np.testing.assert_array_equal(y, run(load_model(path), x.astype(np.int64))[-1])
    assert y.dtype == np.int8 and y.shape == (3, 12)


def test_plan_cli_runs_on_a_residual_network(capsys):
    path = _model("pretrainedResnet_quant")
    assert main(["plan", str(path), "--array", "4x4"]) == 0     # the performance model
    out = capsys.readouterr().out
    assert "op3_add" in out and "12501632" in out.replace(",", "")


def test_compiler_refuses_tflite_models():
    from nnloom.gen.compiler import CompileError, compile_network
    from nnloom.hw.accel_core import AccelConfig

    with pytest.raises(CompileError, match=r"rounding: expected onnxruntime .*got tflite"):
        compile_network(load_model(_model("ad01_int8")), AccelConfig())
    qnet = load_model(_model("kws_ref_model"))
    qnet.rounding = "onnxruntime"
    with pytest.raises(CompileError, match=r"layers\[0\] \(op0_conv_2d\): expected equal padding "
                                           r"on every side, got .* \(4, 5, 1, 1\)"):
        compile_network(qnet, AccelConfig())
    qnet.layers[0].pads = (4, 4, 4, 4)
    with pytest.raises(CompileError, match=r"layers\[1\] \(op1_depthwise_conv_2d\): 'dwconv' layers "
                                           r"are not supported"):
        compile_network(qnet, AccelConfig())
