"""`nnloom infer`: int8 golden for quantized models, float otherwise."""

import numpy as np
import onnx
import pytest

from nnloom.gen.cli import main
from nnloom.gen.frontend import load_model, load_network
from nnloom.gen.frontend import quantize
from nnloom.gen.train import digits_split
from nnloom.sim.golden.qnet import run, run_float
from nnloom.sim.onnx_models import ort_run, to_qdq


@pytest.fixture(scope="module")
def digits():
    return digits_split(0)


def _infer(tmp_path, capsys, net, x, *extra):
    xp, yp = tmp_path / "x.npy", tmp_path / "y.npy"
    np.save(xp, x)
    code = main(["infer", str(net), "--input", str(xp), "-o", str(yp), *extra])
    err = capsys.readouterr().err
    assert code == 0, err
    return np.load(yp), err


def test_int8_digits_mlp(tmp_path, capsys, digits):
    xtr, _, xte, _ = digits
    y, err = _infer(tmp_path, capsys, "examples/digits_mlp.toml", xte[:20])
    net = load_network("examples/digits_mlp.toml")
    q = quantize(net, xtr)
    want = run(q, np.stack([q.quantize_input(s) for s in xte[:20]]))[-1]
    assert y.dtype == np.int8 and y.shape == (20, 10)
    assert np.array_equal(y, want)
    assert "digits training split" in err
    deq, _ = _infer(tmp_path, capsys, "examples/digits_mlp.toml", xte[:20], "--dequantize")
    assert np.allclose(deq, q.dequantize_output(want))
    qmn, _ = _infer(tmp_path, capsys, "examples/digits_mlp.toml", xte[:20], "--format", "qmn")
    qq = quantize(net, xtr, "qmn")
    assert np.array_equal(qmn, run(qq, np.stack([qq.quantize_input(s) for s in xte[:20]]))[-1])


def test_float_and_single_sample(tmp_path, capsys, digits):
    x = digits[2][:7].reshape(-1, 1, 8, 8)
    y, _ = _infer(tmp_path, capsys, "examples/lenet_digits.toml", x, "--float")
    net = load_network("examples/lenet_digits.toml")
    assert y.dtype == np.float32 and np.allclose(y, run_float(net, x)[-1], atol=1e-5)
    one, _ = _infer(tmp_path, capsys, "examples/lenet_digits.toml", x[0])
    assert one.shape == (10,)


def test_other_network_calibrates_on_its_input(tmp_path, capsys):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "w.npz", **{"d.weight": rng.normal(size=(3, 5)).astype(np.float32),
                                    "d.bias": rng.normal(size=3).astype(np.float32)})
    (tmp_path / "n.toml").write_text('weights = "w.npz"\n[input]\nshape = [5]\n'
                                     '[[layers]]\ntype = "fc"\nname = "d"\nout = 3\n')
    x = rng.normal(size=(9, 5))
    y, err = _infer(tmp_path, capsys, tmp_path / "n.toml", x)
    q = quantize(load_network(tmp_path / "n.toml"), x)
    assert np.array_equal(y, run(q, np.stack([q.quantize_input(s) for s in x]))[-1])
    assert "calibrated on the input" in err
    c = rng.normal(size=(4, 5)) * 3
    np.save(tmp_path / "c.npy", c)
    y2, err = _infer(tmp_path, capsys, tmp_path / "n.toml", x, "--calibration", str(tmp_path / "c.npy"))
    q2 = quantize(load_network(tmp_path / "n.toml"), c)
    assert np.array_equal(y2, run(q2, np.stack([q2.quantize_input(s) for s in x]))[-1])


def test_onnx_qdq_runs_with_its_own_parameters(tmp_path, capsys, digits):
    xtr, _, xte, _ = digits
    q = quantize(load_network("examples/digits_mlp.toml"), xtr)
    q.input_zp, q.layers[0].in_zp = 3, 3      # a zero point nnloom's quantizer would not choose
    model = to_qdq(q)
    onnx.save(model, str(tmp_path / "m.onnx"))
    y, _ = _infer(tmp_path, capsys, tmp_path / "m.onnx", xte[:30])
    assert np.array_equal(y, ort_run(model, xte[:30]))
    codes = np.stack([load_model(tmp_path / "m.onnx").quantize_input(s) for s in xte[:30]]).astype(np.int8)
    y2, _ = _infer(tmp_path, capsys, tmp_path / "m.onnx", codes)
    assert np.array_equal(y2, y)
    yf, _ = _infer(tmp_path, capsys, tmp_path / "m.onnx", xte[:30], "--float")
    assert yf.dtype == np.float32 and yf.shape == (30, 10)


@pytest.mark.parametrize("args,msg", [
    (["--input", "{x}"], "the following arguments are required: -o"),
    (["--input", "{tmp}/absent.npy", "-o", "{tmp}/y.npy"], "infer: --input: expected a readable .npy file"),
    (["--input", "{bad}", "-o", "{tmp}/y.npy"], "expected shape [64] or [N, 64], got [3, 63]"),
])
def test_bad_arguments(tmp_path, capsys, args, msg):
    np.save(tmp_path / "x.npy", np.zeros((3, 64)))
    np.save(tmp_path / "bad.npy", np.zeros((3, 63)))
    argv = [a.format(x=tmp_path / "x.npy", tmp=tmp_path, bad=tmp_path / "bad.npy") for a in args]
    assert main(["infer", "examples/digits_mlp.toml", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and msg in err, err
    assert not (tmp_path / "y.npy").exists()


@pytest.mark.parametrize("net", ["examples/alexnet.toml", "examples/alexnet_scalesim.csv", "examples/minerva_mlp.toml"])
def test_networks_without_weights_cannot_run(tmp_path, capsys, net):
    np.save(tmp_path / "x.npy", np.zeros((1, 64)))
    assert main(["infer", net, "--input", str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npy")]) == 2
    err = capsys.readouterr().err
    assert err == f"nnloom: {net}: weights: expected a network with weights to run, got none (timing only)\n"


@pytest.mark.parametrize("uint8", [False, True])
def test_onnx_output_is_what_onnxruntime_writes(tmp_path, capsys, digits, uint8):
    xtr, _, xte, _ = digits
    q = quantize(load_network("examples/digits_mlp.toml"), xtr)
    model = to_qdq(q, uint8=uint8)
    onnx.save(model, str(tmp_path / "m.onnx"))
    want = ort_run(model, xte[:30].astype(np.float32))
    y, _ = _infer(tmp_path, capsys, tmp_path / "m.onnx", xte[:30].astype(np.float32))
    assert y.dtype == want.dtype and y.shape == want.shape and np.array_equal(y, want)
    codes, _ = _infer(tmp_path, capsys, tmp_path / "m.onnx", xte[:30].astype(np.float32), "--codes")
    assert codes.dtype == (np.uint8 if uint8 else np.int8)
    # Integer input must be codes of the model's own input type.
    xq = np.clip(np.rint(xte[:30].astype(np.float32) / np.float32(q.input_scale)), 0, 127)
    wrong = xq.astype(np.int8 if uint8 else np.uint8)
    np.save(tmp_path / "x.npy", wrong)
    assert main(["infer", str(tmp_path / "m.onnx"), "--input", str(tmp_path / "x.npy"),
                 "-o", str(tmp_path / "y.npy")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"expected {'uint8' if uint8 else 'int8'} codes" in err, err
