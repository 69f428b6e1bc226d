"""onnxruntime's U8S8 products (``QLayer.u8s8``, ``rounding == "mlas"``).

* the CPU variant: MLAS's kernel choice from the CPU flags, and the
  ``NNLOOM_MLAS_U8S8`` override;
* the saturating variant against a loop model (pairs along K in MLAS's
  order, raw uint8 codes, int16 clamp), on any CPU;
* which layers the importer marks, against the graph onnxruntime's own
  optimizer writes (``optimized_model_filepath``): the fusion decisions do
  not depend on the CPU, so this runs everywhere.

The bit-exact comparisons with onnxruntime's numbers on the machine at hand
are in tests/sim/test_golden_qnet.py, test_onnx_cnn_ops.py,
test_onnx_roundtrip.py and test_onnx_weight_zp.py.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from nnloom.gen.frontend import Conv2d, Dense, Flatten, MaxPool, Network, QLayer, ReLU, quantize
from nnloom.sim.golden import mlas
from nnloom.sim.golden.qnet import run, run_layer

AVX2_EPYC = {"fpu", "sse2", "ssse3", "sse4_1", "sse4_2", "avx", "avx2", "fma", "f16c", "bmi2"}
SKX = AVX2_EPYC | {"avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512cd"}


@pytest.mark.parametrize("flags,machine,kernel", [
    (AVX2_EPYC, "x86_64", "avx2"),
    (AVX2_EPYC - {"fma"}, "x86_64", "sse"),               # onnxruntime's AVX2 path needs FMA3 too
    ({"sse2", "sse4_1"}, "x86_64", "sse"),
    (AVX2_EPYC | {"avx_vnni"}, "x86_64", "avxvnni"),       # Alder Lake
    (SKX, "x86_64", "avx512core"),                         # Skylake-SP: vpmaddubsw in 512 bits
    (SKX | {"avx_vnni"}, "x86_64", "avx512core"),          # AVX-512 core replaces the AVX-VNNI kernel
    (SKX | {"avx512_vnni"}, "x86_64", "avx512vnni"),       # Cascade Lake, Ice Lake, Zen 4
    (SKX | {"avx512_vnni", "amx_tile", "amx_int8"}, "x86_64", "amx"),
    (SKX | {"avx512_vnni"}, "aarch64", "other"),
])
def test_kernel_family_from_cpu_flags(flags, machine, kernel):
    assert mlas.kernel_from_flags(flags, machine) == kernel


def test_saturating_variant_override(monkeypatch):
    monkeypatch.setenv(mlas.ENV, "saturate")
    assert mlas.u8s8_saturates()
    monkeypatch.setenv(mlas.ENV, "exact")
    assert not mlas.u8s8_saturates()
    monkeypatch.setenv(mlas.ENV, "")
    assert mlas.u8s8_saturates() == (mlas.u8s8_kernel() in ("avx2", "avx512core"))
    monkeypatch.setenv(mlas.ENV, "maybe")
    with pytest.raises(ValueError, match="NNLOOM_MLAS_U8S8"):
        mlas.u8s8_saturates()


def _sat_dot(a, b):
    """sum over pairs of clamp16(a0 b0 + a1 b1), K zero-padded to even: vpmaddubsw + vpmaddwd."""
    a, b = list(a), list(b)
    if len(a) % 2:
        a, b = a + [0], b + [0]
    return sum(min(max(a[i] * b[i] + a[i + 1] * b[i + 1], -32768), 32767) for i in range(0, len(a), 2))


@pytest.mark.parametrize("k", [1, 7, 16])
def test_pair_correction_against_a_loop(k):
    rng = np.random.default_rng(k)
    a = rng.integers(0, 256, (9, k))
    b = rng.integers(-128, 128, (k, 5))
    b[:, 0] = 127                                  # saturates wherever a pair of a is large
    corr = mlas.u8s8_correction(a, b)
    for p in range(9):
        for m in range(5):
            assert corr[p, m] == _sat_dot(a[p], b[:, m]) - int(a[p] @ b[:, m])
    assert np.any(corr != 0) == (k > 1)             # one product alone never leaves int16
    order = rng.permutation(k)
    corr = mlas.u8s8_correction(a, b, order)
    assert corr[3, 1] == _sat_dot(a[3, order], b[order, 1]) - int(a[3] @ b[:, 1])


def _loop_conv_u8s8(ql, x):
    """onnxruntime's QLinearConv on uint8 codes ``x + 128`` with a saturating U8S8
    kernel: NHWC im2col (K = (r, s, c)), padding with the input zero point,
    pairs clamped to int16, zero points as 32-bit corrections, float32
    requantization."""
    m, c, r, s = ql.weight.shape
    _, e, f = ql.out_shape
    t, _, l, _ = ql.pad4
    za = ql.in_zp + 128
    wz = np.zeros(m, np.int64) if ql.w_zp is None else ql.w_zp
    scale = (np.float32(ql.in_scale) * ql.w_scale.astype(np.float32)) / np.float32(ql.out_scale)
    y = np.zeros((m, e, f), np.int64)
    h, w = x.shape[1:]
    for o in range(m):
        for i in range(e):
            for j in range(f):
                a, b = [], []
                for ri in range(r):
                    for si in range(s):
                        for ci in range(c):
                            hi, wi = i * ql.stride + ri - t, j * ql.stride + si - l
                            inside = 0 <= hi < h and 0 <= wi < w
                            a.append(int(x[ci, hi, wi]) + 128 if inside else za)
                            b.append(int(ql.weight[o, ci, ri, si]))
                acc = _sat_dot(a, b) - int(wz[o]) * sum(a) - za * sum(b) + len(a) * za * int(wz[o])
                acc += int(ql.bias[o])
                v = np.float32(acc) * scale[o]
                v = np.clip(v, np.float32(ql.qmin - ql.out_zp), np.float32(ql.qmax - ql.out_zp))
                y[o, i, j] = int(np.rint(v)) + ql.out_zp
    return y


@pytest.mark.parametrize("seed", range(3))
def test_saturating_conv_against_loop_model(seed, monkeypatch):
    monkeypatch.setenv(mlas.ENV, "saturate")
    rng = np.random.default_rng(seed)
    m, c, k = 3, 3, 3
    ql = QLayer("c", "conv", (c, 5, 6), (m, 3, 3), 0.02, int(rng.integers(-20, 20)), 3.0,
                int(rng.integers(-10, 10)), weight=rng.integers(-128, 128, (m, c, k, k)),
                bias=rng.integers(-3000, 3000, m), w_scale=rng.uniform(0.005, 0.02, m),
                kernel=(k, k), stride=2, pads=(1, 1, 1, 0), u8s8="qlinear",
                w_zp=None if seed == 0 else rng.integers(-5, 5, m))
    ql.weight[0] = 127                                  # saturating pairs in channel 0
    x = rng.integers(-128, 128, (2, c, 5, 6))
    x[0, :, :2, :] = 127
    got = run_layer(ql, x, "mlas")
    for n in range(len(x)):
        assert np.array_equal(got[n], _loop_conv_u8s8(ql, x[n])), f"seed {seed} sample {n}"
    monkeypatch.setenv(mlas.ENV, "exact")
    exact = run_layer(ql, x, "mlas")
    assert not np.array_equal(exact, got)               # the case saturates
    monkeypatch.setenv(mlas.ENV, "saturate")
    ql.u8s8 = "qdq"
    assert np.array_equal(run_layer(ql, x, "mlas"), got)
    assert np.array_equal(run_layer(ql, x, "mlas", qdq_fused=False), exact)
    ql.u8s8 = None
    assert np.array_equal(run_layer(ql, x, "mlas"), exact)


def test_saturating_fc_pairs_the_inputs_in_order(monkeypatch):
    monkeypatch.setenv(mlas.ENV, "saturate")
    w = np.array([[127, 127, -128, -128, 5]])
    ql = QLayer("d", "fc", (5,), (1,), 1.0, -3, 1000.0, 0, weight=w, bias=np.array([0]),
                w_scale=np.array([1.0]), u8s8="qlinear")
    x = np.array([[127, 127, 127, 127, 127]])
    a = x[0] + 128
    want = _sat_dot(a, w[0]) - (ql.in_zp + 128) * int(w.sum())
    assert want != int((x[0] - ql.in_zp) @ w[0])
    got = run_layer(ql, x, "mlas")
    assert got[0, 0] == int(np.rint(np.float32(want) * np.float32(1.0 / 1000.0)))


# -- the importer against onnxruntime's optimized graph ---------------------------

def _net(layers, shape, seed=0):
    rng = np.random.default_rng(seed)
    net = Network("n", shape, layers)
    net.weights = {k: rng.normal(0, 0.5 if k.endswith(".weight") else 0.2, s).astype(np.float32)
                   for k, s in net.weight_shapes().items()}
    return quantize(net, rng.normal(0, 1, (16, *shape)))


def _ort_u8s8(model, tmp_path):
    """Names of the nodes onnxruntime's optimizer turned into a U8S8 kernel."""
    import onnx
    import onnx.numpy_helper as nh
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.optimized_model_filepath = str(tmp_path / "opt.onnx")
    opts.log_severity_level = 3
    ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    opt = onnx.load(str(tmp_path / "opt.onnx"))
    init = {t.name: nh.to_array(t) for t in opt.graph.initializer}
    names = set()
    for n in opt.graph.node:
        if n.op_type in ("QLinearConv", "QGemm", "QLinearMatMul"):
            xz, w = init.get(n.input[2]), init.get(n.input[3])
            depthwise = n.op_type == "QLinearConv" and w is not None and w.shape[1] == 1 and any(
                a.name == "group" and a.i > 1 for a in n.attribute)
            if xz is not None and xz.dtype == np.uint8 and w is not None and w.dtype == np.int8 and not depthwise:
                names.add(re.sub(r"_token_\d+$", "", n.name).replace("/MatMulAddFusion", ""))
    return names


def _marked(model, tmp_path):
    import onnx

    from nnloom.gen.frontend.loaders.onnx_import import read_onnx

    onnx.save(model, str(tmp_path / "m.onnx"))
    q = read_onnx(str(tmp_path / "m.onnx")).qnet
    return {ql.name: ql.u8s8 for ql in q.layers if ql.u8s8}


def _flatten_to_reshape(model):
    """The same model with each Flatten written as Reshape [0, -1]."""
    import onnx.helper as oh
    import onnx.numpy_helper as nh

    for i, n in enumerate(model.graph.node):
        if n.op_type == "Flatten":
            shape = f"{n.name}.shape"
            model.graph.initializer.append(nh.from_array(np.array([0, -1], np.int64), shape))
            model.graph.node.remove(n)
            model.graph.node.insert(i, oh.make_node("Reshape", [n.input[0], shape], list(n.output), name=n.name))
    return model


CHAIN = [Conv2d("c1", 4, (3, 3), padding=1), MaxPool("p", 2), Conv2d("c2", 4, (1, 1)), Flatten("f"),
         Dense("d1", 6), Dense("d2", 5)]


@pytest.mark.parametrize("form", ["qdq", "qlinear"])
@pytest.mark.parametrize("variant", ["int8", "uint8"])
@pytest.mark.parametrize("reshape", [False, True])
def test_importer_marks_the_layers_onnxruntime_fuses(tmp_path, form, variant, reshape):
    """int8 QDQ: the last layer stays float (its Q is a graph output, kept int8),
    and Flatten (unlike Reshape) keeps the DQ from reaching the Gemm."""
    pytest.importorskip("onnxruntime")
    from nnloom.sim.onnx_models import to_qdq, to_qlinear

    q = _net(CHAIN, (2, 6, 6))
    for ql in q.layers:
        ql.bias = np.zeros_like(ql.bias) if ql.kind == "fc" else ql.bias    # QLinearMatMul has no bias
    model = (to_qdq if form == "qdq" else to_qlinear)(q, uint8=variant == "uint8")
    if reshape:
        model = _flatten_to_reshape(model)
    marked = _marked(model, tmp_path)
    assert set(marked) == _ort_u8s8(model, tmp_path)
    assert set(marked.values()) <= {"qdq" if form == "qdq" else "qlinear"}
    if form == "qdq" and variant == "int8":
        assert "d2" not in marked and "c1" in marked and ("d1" in marked) == reshape
    if form == "qlinear":
        assert set(marked) == ({"c1", "c2", "d1", "d2"} if variant == "uint8" else set())


def _float_biases(model):
    """The same model with every int32 bias DequantizeLinear replaced by its float value."""
    import onnx.numpy_helper as nh

    init = {t.name: t for t in model.graph.initializer}
    for n in list(model.graph.node):
        if n.op_type == "DequantizeLinear" and n.input[0].endswith(".b"):
            b = nh.to_array(init[n.input[0]]).astype(np.float64) * nh.to_array(init[n.input[1]])
            model.graph.initializer.append(nh.from_array(b.astype(np.float32), n.output[0] + ".f"))
            for c in model.graph.node:
                c.input[:] = [n.output[0] + ".f" if i == n.output[0] else i for i in c.input]
            model.graph.node.remove(n)
    return model


def _gemm_as_matmul_add(model):
    """The same model with each Gemm (transB) written as MatMul -> Add(bias)."""
    import onnx.helper as oh
    import onnx.numpy_helper as nh

    init = {t.name: t for t in model.graph.initializer}
    for n in [n for n in model.graph.node if n.op_type == "Gemm"]:
        wdq = next(d for d in model.graph.node if d.output[0] == n.input[1])
        init[wdq.input[0]].CopyFrom(nh.from_array(np.ascontiguousarray(nh.to_array(init[wdq.input[0]]).T),
                                                  wdq.input[0]))
        for a in wdq.attribute:
            if a.name == "axis":
                a.i = 1
        i = list(model.graph.node).index(n)
        model.graph.node.remove(n)
        model.graph.node.insert(i, oh.make_node("MatMul", list(n.input[:2]), [n.output[0] + ".mm"], name=n.name))
        model.graph.node.insert(i + 1, oh.make_node("Add", [n.output[0] + ".mm", n.input[2]], list(n.output),
                                                    name=n.name + ".add"))
    return model


@pytest.mark.parametrize("rewrite", ["float_bias", "matmul_add", "both"])
def test_float_biases_and_matmul_add_are_fused_too(tmp_path, rewrite):
    """onnxruntime quantizes a float bias itself (WeightBiasQuantization) and turns
    MatMul -> Add into a Gemm (MatMulAddFusion) before fusing: still U8S8, and the
    golden model still gives its codes."""
    pytest.importorskip("onnxruntime")
    import onnx

    from nnloom.gen.frontend import load_model
    from nnloom.sim.onnx_models import ort_run, to_qdq

    q = _net([Conv2d("c1", 4, (3, 3)), Flatten("f"), Dense("d1", 6), Dense("d2", 5)], (2, 6, 6), seed=2)
    model = to_qdq(q, uint8=True)
    if rewrite in ("matmul_add", "both"):
        model = _gemm_as_matmul_add(model)
    if rewrite in ("float_bias", "both"):
        model = _float_biases(model)
    marked = _marked(model, tmp_path)
    assert set(marked) == _ort_u8s8(model, tmp_path) == {"c1", "d2"}
    onnx.save(model, str(tmp_path / "m.onnx"))
    qi = load_model(tmp_path / "m.onnx")
    x = np.random.default_rng(0).normal(0, 1.5, (32, 2, 6, 6))
    xq = np.stack([qi.quantize_input(v) for v in x])
    want = ort_run(model, x).astype(np.int64).reshape(len(x), -1) - 128
    assert np.array_equal(run(qi, xq)[-1].reshape(len(x), -1), want)


@pytest.mark.parametrize("out_zp", [-128, 3])
def test_relu_is_fused_only_into_a_clamping_quantizer(tmp_path, out_zp):
    """A Relu before the Q goes only when the Q's zero point is its type's minimum
    (onnxruntime drops it as redundant); otherwise FusedConv runs in float."""
    pytest.importorskip("onnxruntime")
    from nnloom.sim.onnx_models import to_qdq

    q = _net([Conv2d("c", 3, (3, 3)), ReLU("r"), Conv2d("c2", 2, (1, 1))], (2, 5, 5))
    q.layers[0].out_zp = out_zp
    q.layers[0].qmin = out_zp
    q.layers[1].in_zp = out_zp
    model = to_qdq(q, uint8=True)
    marked = _marked(model, tmp_path)
    assert set(marked) == _ort_u8s8(model, tmp_path)
    assert ("c" in marked) == (out_zp == -128) and "c2" in marked


def test_uint8_weights_and_int8_activations_are_exact(tmp_path):
    """QLinearConv with uint8 weights (U8U8) and with int8 activations (S8S8): never U8S8."""
    pytest.importorskip("onnxruntime")
    from nnloom.sim.onnx_models import to_qlinear

    q = _net([Conv2d("c", 3, (3, 3))], (2, 5, 5))
    assert _marked(to_qlinear(q, uint8=False), tmp_path) == {}
    model = to_qlinear(q, uint8=True)
    assert _marked(model, tmp_path) == {"c": "qlinear"}
    import onnx.numpy_helper as nh

    for i, t in enumerate(model.graph.initializer):          # the same weights as uint8 (+128)
        if t.name in ("c.w", "c.wz"):
            model.graph.initializer[i].CopyFrom(nh.from_array((nh.to_array(t).astype(np.int16) + 128)
                                                              .astype(np.uint8), t.name))
    assert _marked(model, tmp_path) == {} and _ort_u8s8(model, tmp_path) == set()


def test_run_keeps_every_variant_on_unmarked_networks(monkeypatch):
    """nnloom's own networks (no u8s8 marks) compute the same in every variant."""
    q = _net(CHAIN[:3], (2, 6, 6))
    x = np.random.default_rng(1).integers(-128, 128, (3, 2, 6, 6))
    monkeypatch.setenv(mlas.ENV, "saturate")
    a = run(q, x)
    monkeypatch.setenv(mlas.ENV, "exact")
    assert all(np.array_equal(u, v) for u, v in zip(a, run(q, x)))
