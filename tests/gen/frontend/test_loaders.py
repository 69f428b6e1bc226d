"""Loaders: TOML, ONNX (float), SCALE-Sim CSV; malformed inputs give one line and status 2."""

import numpy as np
import onnx
import onnx.helper as oh
import onnx.numpy_helper as nh
import pytest
from onnx import TensorProto

from nnloom.gen.cli import main
from nnloom.gen.frontend import load_model, load_network
from nnloom.gen.frontend import Conv2d, Dense, NetworkError
from nnloom.gen.frontend import QuantizedNetwork
from nnloom.sim.golden.qnet import run_float
from nnloom.sim.onnx_models import ort_run, to_onnx

EXAMPLES = ["examples/digits_mlp.toml", "examples/minerva_mlp.toml", "examples/lenet_digits.toml",
            "examples/alexnet.toml", "examples/alexnet_scalesim.csv", "examples/gemm_scalesim.csv"]


@pytest.mark.parametrize("path", EXAMPLES)
def test_every_example_parses(path):
    net = load_network(path)
    assert net.layers and net.macs() > 0


def test_alexnet_toml_and_scalesim_agree():
    toml, csv = load_network("examples/alexnet.toml"), load_network("examples/alexnet_scalesim.csv")
    gemms = lambda n: [l.gemm_shape(s) for l, s in zip(n.layers, n.in_shapes()) if l.kind in ("conv", "fc")]
    # Same GEMMs (the CSV states the fc layers as convolutions); 1.135 GMACs.
    assert [tuple(sorted(g)) for g in gemms(toml)] == [tuple(sorted(g)) for g in gemms(csv)]
    assert toml.macs() == csv.macs() == 1_135_256_096


def test_scalesim_gemm_rows_are_exact_gemms():
    net = load_network("examples/gemm_scalesim.csv")
    got = [l.gemm_shape(s) for l, s in zip(net.layers, net.in_shapes())]
    assert got == [(8, 8, 8), (1, 64, 256), (16, 64, 32), (100, 27, 4)]          # (M, K, N)
    assert net.macs() == sum(m * k * n for m, k, n in got)
    with pytest.raises(NetworkError, match="no weights to run"):
        net.forward(np.zeros(net.input_shape))


def test_toml_fields(tmp_path):
    p = tmp_path / "n.toml"
    p.write_text('name = "t"\n[input]\nshape = [2, 9, 9]\n'
                 '[[layers]]\ntype = "conv"\nout_channels = 4\nkernel = [3, 2]\nstride = 2\npadding = 1\nbias = false\n'
                 '[[layers]]\ntype = "avgpool"\nkernel = 2\nstride = 1\n'
                 '[[layers]]\ntype = "flatten"\n[[layers]]\ntype = "fc"\nout = 3\n')
    net = load_network(p)
    conv = net.layers[0]
    assert conv == Conv2d("conv0", 4, (3, 2), stride=2, padding=1, bias=False)
    assert net.shapes() == [(4, 5, 5), (4, 4, 4), (64,), (3,)]
    assert net.layers[3] == Dense("fc3", 3)


def test_onnx_float_round_trip(tmp_path):
    src = load_network("examples/lenet_digits.toml")
    onnx.save(to_onnx(src), str(tmp_path / "m.onnx"))
    net = load_network(tmp_path / "m.onnx")
    assert [l.kind for l in net.layers] == [l.kind for l in src.layers]
    assert net.shapes() == src.shapes()
    for k, v in src.weights.items():
        assert np.array_equal(net.weights[k], v), k
    assert not isinstance(load_model(tmp_path / "m.onnx"), QuantizedNetwork)
    x = np.random.default_rng(0).random((5, 1, 8, 8))
    assert np.allclose(ort_run(to_onnx(src), x), run_float(net, x)[-1], atol=1e-4)


def test_onnx_matmul_add_and_reshape(tmp_path):
    rng = np.random.default_rng(1)
    w, b = rng.normal(size=(12, 5)).astype(np.float32), rng.normal(size=5).astype(np.float32)
    nodes = [oh.make_node("Reshape", ["x", "shape"], ["f"]), oh.make_node("MatMul", ["f", "w"], ["m"]),
             oh.make_node("Add", ["m", "b"], ["y"])]
    inits = [nh.from_array(w, "w"), nh.from_array(b, "b"), nh.from_array(np.array([-1, 12]), "shape")]
    g = oh.make_graph(nodes, "mm", [oh.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 2, 2])],
                      [oh.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    model = oh.make_model(g, opset_imports=[oh.make_opsetid("", 17)], ir_version=8)
    onnx.save(model, str(tmp_path / "m.onnx"))
    net = load_network(tmp_path / "m.onnx")
    x = rng.random((1, 3, 2, 2))
    assert np.allclose(run_float(net, x)[-1], ort_run(model, x), atol=1e-5)


# -- malformed inputs: one line, exit status 2 ---------------------------------------

GOOD = '[input]\nshape = [1, 8, 8]\n[[layers]]\ntype = "conv"\nout_channels = 2\nkernel = 3\n'
TOML_CASES = {
    "syntax": ('name = "x', "syntax"),
    "no_input": ('[[layers]]\ntype = "relu"\n', "input.shape"),
    "input_rank": ('[input]\nshape = [8, 8]\n[[layers]]\ntype = "relu"\n', "input.shape"),
    "input_zero": ('[input]\nshape = [0]\n[[layers]]\ntype = "relu"\n', "input.shape[0]"),
    "unknown_type": ('[input]\nshape = [4]\n[[layers]]\ntype = "lstm"\n', "layers[0].type"),
    "unknown_key": (GOOD + "kernal = 3\n", "layers[0].kernal"),
    "missing_out_channels": ('[input]\nshape = [1, 8, 8]\n[[layers]]\ntype = "conv"\nkernel = 3\n',
                             "layers[0].out_channels"),
    "kernel_zero": (GOOD.replace("kernel = 3", "kernel = 0"), "layers[0].kernel"),
    "kernel_string": (GOOD.replace("kernel = 3", 'kernel = "3"'), "layers[0].kernel"),
    "stride_range": (GOOD + "stride = 99\n", "layers[0].stride"),
    "bias_type": (GOOD + 'bias = "yes"\n', "layers[0].bias"),
    "kernel_too_big": (GOOD.replace("kernel = 3", "kernel = 11"), "layers[0] (conv0)"),
    "fc_needs_flat": ('[input]\nshape = [1, 8, 8]\n[[layers]]\ntype = "fc"\nout = 3\n', "layers[0] (fc0)"),
    "duplicate_name": (GOOD + 'name = "a"\n[[layers]]\ntype = "relu"\nname = "a"\n', "layers[1].name"),
    "no_layers": ('[input]\nshape = [4]\n', "layers"),
    "top_key": ('nmae = "x"\n' + GOOD, "nmae"),
    "pool_kernel_list": ('[input]\nshape = [1, 8, 8]\n[[layers]]\ntype = "maxpool"\nkernel = [2, 2]\n',
                         "layers[0].kernel"),
    "weights_missing_file": ('weights = "nope.npz"\n' + GOOD, "weights"),
}


def _onnx(nodes, inits, in_shape=(1, 1, 8, 8), extra_inputs=(), in_type=TensorProto.FLOAT):
    inputs = [oh.make_tensor_value_info("x", in_type, list(in_shape)), *extra_inputs]
    g = oh.make_graph(nodes, "bad", inputs, [oh.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT, None)],
                      [nh.from_array(v, k) for k, v in inits.items()])
    return oh.make_model(g, opset_imports=[oh.make_opsetid("", 17)], ir_version=8)


W = {"w": np.ones((2, 1, 3, 3), np.float32)}
ONNX_CASES = {
    "unsupported_op": (lambda: _onnx([oh.make_node("Softmax", ["x"], ["y"])], {}), "(Softmax)"),
    "conv_group": (lambda: _onnx([oh.make_node("Conv", ["x", "w"], ["y"], group=2)], W), "group"),
    "conv_dilation": (lambda: _onnx([oh.make_node("Conv", ["x", "w"], ["y"], dilations=[2, 2])], W), "dilations"),
    "int_input_float_model": (lambda: _onnx([oh.make_node("Relu", ["x"], ["y"])], {}, in_type=TensorProto.INT8),
                              "graph.input (x)"),
    "add_broadcast": (lambda: _onnx([oh.make_node("MaxPool", ["x"], ["r"], kernel_shape=[2, 2], strides=[2, 2]),
                                     oh.make_node("Add", ["r", "x"], ["y"])], {}), "no broadcasting"),
    "pool_pads": (lambda: _onnx([oh.make_node("MaxPool", ["x"], ["y"], kernel_shape=[2, 2], pads=[1, 1, 1, 1])], {}),
                  "no pads"),
    "symbolic_channels": (lambda: _onnx([oh.make_node("Relu", ["x"], ["y"])], {}, in_shape=("N", "C", 8, 8)),
                          "graph.input"),
    "two_inputs": (lambda: _onnx([oh.make_node("Relu", ["x"], ["y"])], {},
                                 extra_inputs=[oh.make_tensor_value_info("z", TensorProto.FLOAT, [1, 4])]),
                   "graph.input"),
    "weight_from_input": (lambda: _onnx([oh.make_node("Conv", ["x", "x"], ["y"])], {}), "initializer"),
    "gemm_transa": (lambda: _onnx([oh.make_node("Flatten", ["x"], ["f"]), oh.make_node("Gemm", ["f", "g"], ["y"], transA=1)],
                                  {"g": np.ones((64, 3), np.float32)}), "transA"),
    "qdq_no_final_q": (lambda: _onnx([
        oh.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]), oh.make_node("DequantizeLinear", ["q", "s", "z"], ["d"]),
        oh.make_node("DequantizeLinear", ["wq", "ws"], ["w"], axis=0), oh.make_node("Conv", ["d", "w"], ["y"])],
        {"s": np.array(0.1, np.float32), "z": np.array(0, np.int8), "wq": np.ones((2, 1, 3, 3), np.int8),
         "ws": np.array([0.1, 0.1], np.float32)}), "QuantizeLinear missing"),
    "qlinear_relu_zero_point": (lambda: _onnx([
        oh.make_node("QuantizeLinear", ["x", "s", "z"], ["q"]), oh.make_node("Relu", ["q"], ["y"])],
        {"s": np.array(0.1, np.float32), "z": np.array(5, np.int8)}), "zero point 0 for Relu"),
}


def _check_one_line(capsys, argv, path, field):
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    line = err.strip()
    assert line.startswith(f"nnloom: {path}: "), line
    assert field in line and "expected" in line, line


@pytest.fixture
def x_npy(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, np.zeros((1, 64), np.float32))
    return str(path)


@pytest.mark.parametrize("case", sorted(TOML_CASES))
def test_malformed_toml(case, tmp_path, capsys, x_npy):
    text, field = TOML_CASES[case]
    path = tmp_path / f"{case}.toml"
    path.write_text(text)
    _check_one_line(capsys, ["infer", str(path), "--input", x_npy, "-o", str(tmp_path / "y.npy")], path, field)
    assert not (tmp_path / "y.npy").exists()


def test_malformed_weights_shape(tmp_path, capsys, x_npy):
    np.savez(tmp_path / "w.npz", **{"conv0.weight": np.zeros((2, 1, 5, 5)), "conv0.bias": np.zeros(2)})
    path = tmp_path / "n.toml"
    path.write_text('weights = "w.npz"\n' + GOOD)
    _check_one_line(capsys, ["infer", str(path), "--input", x_npy, "-o", str(tmp_path / "y.npy")],
                    path, "conv0.weight")


@pytest.mark.parametrize("case", sorted(ONNX_CASES))
def test_malformed_onnx(case, tmp_path, capsys, x_npy):
    build, field = ONNX_CASES[case]
    path = tmp_path / f"{case}.onnx"
    onnx.save(build(), str(path))
    _check_one_line(capsys, ["infer", str(path), "--input", x_npy, "-o", str(tmp_path / "y.npy")], path, field)


OTHER_CASES = {
    "garbage.onnx": (b"\x00not a protobuf\xff" * 10, "file"),
    "n.txt": (b"hello", "file"),
    "bad_header.csv": (b"Layer, A, B,\nx, 1, 2,\n", "header"),
    "bad_number.csv": (b"Layer, M, N, K,\ng, 8, eight, 8,\n", "line 2: n"),
    "bad_columns.csv": (b"Layer, M, N, K,\ng, 8, 8,\n", "line 2"),
    "no_rows.csv": (b"Layer, M, N, K,\n", "rows"),
}


@pytest.mark.parametrize("name", sorted(OTHER_CASES))
def test_malformed_other(name, tmp_path, capsys, x_npy):
    data, field = OTHER_CASES[name]
    path = tmp_path / name
    path.write_bytes(data)
    _check_one_line(capsys, ["infer", str(path), "--input", x_npy, "-o", str(tmp_path / "y.npy")], path, field)


def test_missing_file(tmp_path, capsys, x_npy):
    path = tmp_path / "absent.toml"
    _check_one_line(capsys, ["infer", str(path), "--input", x_npy, "-o", str(tmp_path / "y.npy")], path, "file")


# -- fuzz: random graphs and documents fail with a NetworkError, never anything else --

FUZZ_OPS = {"Conv": 3, "Gemm": 3, "MatMul": 2, "Add": 2, "Relu": 1, "MaxPool": 1, "AveragePool": 1,
            "Flatten": 1, "Reshape": 2, "Identity": 1, "QuantizeLinear": 3, "DequantizeLinear": 3,
            "QLinearConv": 9, "QLinearMatMul": 8, "QLinearAveragePool": 5, "Softmax": 1}
FUZZ_ATTRS = [{}, {"kernel_shape": [2, 2]}, {"kernel_shape": [3, 3], "strides": [2, 2]},
              {"pads": [1, 1, 1, 1], "kernel_shape": [3, 3]}, {"transB": 1}, {"axis": 0}, {"group": 2}]


def _random_graph(rng):
    in_shape = [1, 2, 6, 6] if rng.random() < 0.6 else [1, 8]
    nodes, inits, cur = [], {}, "x"
    for i in range(int(rng.integers(1, 5))):
        op = str(rng.choice(list(FUZZ_OPS)))
        ins = [cur]
        for j in range(1, FUZZ_OPS[op]):
            if rng.random() < 0.15:
                ins.append("")
                continue
            dtype = [np.float32, np.int8, np.uint8, np.int32, np.int64][int(rng.integers(5))]
            shape = [int(v) for v in rng.integers(1, 5, int(rng.integers(0, 5)))]
            inits[f"i{i}_{j}"] = (rng.normal(size=shape) * 3).astype(dtype)
            ins.append(f"i{i}_{j}")
        while ins[-1] == "":
            ins.pop()
        nodes.append(oh.make_node(op, ins, [f"t{i}"], name=f"n{i}",
                                  domain="com.microsoft" if op.startswith("QLinearAv") else "",
                                  **FUZZ_ATTRS[int(rng.integers(len(FUZZ_ATTRS)))]))
        cur = f"t{i}"
    g = oh.make_graph(nodes, "fuzz", [oh.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
                      [oh.make_tensor_value_info(cur, TensorProto.FLOAT, None)],
                      [nh.from_array(v, k) for k, v in inits.items()])
    return oh.make_model(g, opset_imports=[oh.make_opsetid("", 17), oh.make_opsetid("com.microsoft", 1)],
                         ir_version=8)


def test_random_onnx_graphs_fail_cleanly(tmp_path):
    rng = np.random.default_rng(2026)
    path = tmp_path / "f.onnx"
    for n in range(300):
        onnx.save(_random_graph(rng), str(path))
        for load in (load_network, load_model):
            try:
                load(path)
            except NetworkError:
                pass
            except Exception as e:  # noqa: BLE001 - the point of the test
                pytest.fail(f"graph {n} (seed 2026): {type(e).__name__}: {e}")


def test_random_toml_values_fail_cleanly(tmp_path):
    rng = np.random.default_rng(7)
    keys = ["out_channels", "kernel", "stride", "padding", "bias", "name", "out", "type"]
    values = ["0", "-1", "3", "99", "1.5", '"x"', "true", "[]", "[3]", "[3, 3]", "[1, 2, 3]", "{a = 1}",
              '"conv"', '"fc"', '"maxpool"', '"flatten"']
    path = tmp_path / "f.toml"
    for n in range(300):
        layers = []
        for _ in range(int(rng.integers(1, 4))):
            body = {k: values[int(rng.integers(len(values)))] for k in rng.choice(keys, 3, replace=False)}
            layers.append("[[layers]]\n" + "".join(f"{k} = {v}\n" for k, v in body.items()))
        shape = ["[1, 8, 8]", "[64]", "[0]", "64", "[1, 2]"][int(rng.integers(5))]
        path.write_text(f"[input]\nshape = {shape}\n" + "".join(layers))
        try:
            load_network(path)
        except NetworkError:
            pass
        except Exception as e:  # noqa: BLE001
            pytest.fail(f"document {n} (seed 7): {type(e).__name__}: {e}\n{path.read_text()}")


@pytest.mark.parametrize("spec", ["{ seed = -1 }", "{ seed = 1.5 }", "{ seed = 1, scale = 2 }",
                                  "{ seed = true }"])
def test_malformed_seeded_weights(spec, tmp_path, capsys, x_npy):
    path = tmp_path / "n.toml"
    path.write_text(f"weights = {spec}\n" + GOOD)
    _check_one_line(capsys, ["infer", str(path), "--input", x_npy, "-o", str(tmp_path / "y.npy")],
                    path, "weights")


def test_seeded_weights_are_the_seeds():
    """weights = { seed = N }: every tensor of the network's shapes, the same
    for the same seed and different for another."""
    import tomllib

    from nnloom.gen.frontend.loaders.toml_format import parse_toml

    def net(seed):
        return parse_toml(tomllib.loads(f"weights = {{ seed = {seed} }}\n" + GOOD), "n.toml")

    a, b, c = net(3), net(3), net(4)
    assert set(a.weights) == set(a.weight_shapes())
    assert all(np.array_equal(a.weights[k], b.weights[k]) for k in a.weights)
    assert any(not np.array_equal(a.weights[k], c.weights[k]) for k in a.weights)
