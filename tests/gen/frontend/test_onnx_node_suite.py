"""ONNX's own node test suite, for every operator nnloom accepts.

Each case of ``onnx.backend.test.case.node`` (generated at test time: the
wheel ships no files) is built as a model whose first input is the data and
whose other inputs become initializers (nnloom networks are single-input
chains; exporters write weights as initializers).  Every case either passes
(nnloom's output equals the case's: bit for bit for integer outputs, within
the suite's float tolerance otherwise, and the shape exactly) or is refused
with one :class:`NetworkError` line.  None may give a wrong shape or wrong
values.  The table in docs/network-format.md is this test's count
(``python tests/gen/frontend/test_onnx_node_suite.py`` prints it).
"""

import collections
import importlib
import re
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest

from nnloom.gen.cli.infer import run_onnx
from nnloom.gen.cli.common import UsageError
from nnloom.gen.frontend import NetworkError
from nnloom.gen.frontend.loaders.onnx_import import read_onnx

# Operators nnloom accepts -> the node-suite module that holds their cases.
MODULES = {"Conv": "conv", "Gemm": "gemm", "MatMul": "matmul", "Add": "add", "Relu": "relu",
           "MaxPool": "maxpool", "AveragePool": "averagepool", "Flatten": "flatten",
           "Reshape": "reshape", "Identity": "identity", "Dropout": "dropout",
           "QuantizeLinear": "quantizelinear", "DequantizeLinear": "dequantizelinear",
           "QLinearConv": "qlinearconv", "QLinearMatMul": "qlinearmatmul", "Cast": "cast",
           "Softmax": "softmax", "ArgMax": "argmax", "GlobalAveragePool": "globalaveragepool",
           "BatchNormalization": "batch_normalization"}
DOC = Path(__file__).resolve().parents[3] / "docs" / "network-format.md"


def _cases():
    import onnx.backend.test.case.node as suite

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for mod in MODULES.values():
            importlib.import_module(f"onnx.backend.test.case.node.{mod}")
    out = []
    for tc in suite._NodeTestCases:
        ops = {n.op_type for n in tc.model.graph.node}
        op = tc.model.graph.node[0].op_type if len(tc.model.graph.node) == 1 else None
        if op in MODULES:
            out.append((op, tc))
        elif ops & set(MODULES) and len(tc.model.graph.node) > 1:
            out.append((sorted(ops & set(MODULES))[0], tc))
    return out


def _as_chain(tc):
    """The case's model with inputs 1.. as initializers."""
    model = onnx.ModelProto()
    model.CopyFrom(tc.model)
    inputs, _ = tc.data_sets[0]
    g = model.graph
    for vi, arr in list(zip(g.input, inputs))[1:]:
        g.initializer.append(arr if isinstance(arr, onnx.TensorProto) else onnx.numpy_helper.from_array(arr, vi.name))
    keep = g.input[0]
    del g.input[:]
    g.input.append(keep)
    return model


def outcome(tc):
    """``("pass", None)`` or ``("refused", message)``; anything else raises."""
    inputs, outputs = tc.data_sets[0]
    try:
        g = read_onnx(f"{tc.name}.onnx", _as_chain(tc))
    except NetworkError as e:
        assert "\n" not in str(e), str(e)
        return "refused", str(e)
    x = inputs[0]
    assert isinstance(x, np.ndarray), tc.name
    try:
        got = run_onnx(g, x)
    except UsageError as e:      # e.g. an input type the model's codes cannot take
        assert "\n" not in str(e), str(e)
        return "refused", str(e)
    for (name, _, _), want in zip(g.outputs, outputs):
        y = np.asarray(got[name])
        want = np.asarray(want)
        if y.shape != want.shape and y.reshape(-1).size == want.size and y.ndim == want.ndim - 1:
            y = y.reshape(want.shape)   # a batch of one written as one sample
        assert y.shape == want.shape, f"{tc.name}: shape {y.shape}, expected {want.shape}"
        assert y.dtype == want.dtype, f"{tc.name}: dtype {y.dtype}, expected {want.dtype}"
        if np.issubdtype(want.dtype, np.integer):
            assert np.array_equal(y, want), f"{tc.name}: values differ"
        else:
            np.testing.assert_allclose(y, want, rtol=tc.rtol, atol=max(tc.atol, 1e-6), err_msg=tc.name)
    return "pass", None


def table(cases=None):
    """The markdown table of pass / refused counts per operator."""
    counts = collections.defaultdict(collections.Counter)
    for op, tc in cases or _cases():
        counts[op][outcome(tc)[0]] += 1
    lines = ["| operator | cases | pass | refused |", "|---|---:|---:|---:|"]
    for op in MODULES:
        c = counts[op]
        lines.append(f"| `{op}` | {c['pass'] + c['refused']} | {c['pass']} | {c['refused']} |")
    return "\n".join(lines)


@pytest.fixture(scope="module")
def cases():
    return _cases()


def test_every_case_passes_or_is_refused_in_one_line(cases):
    assert len(cases) > 150
    results = collections.Counter()
    for op, tc in cases:
        results[op, outcome(tc)[0]] += 1
    # The accepted layer kinds really run: their plain cases pass.
    for op in ("Conv", "Gemm", "MatMul", "MaxPool", "AveragePool", "Flatten"):
        assert results[op, "pass"] > 0, op


def test_doc_table_is_this_suite(cases):
    text = DOC.read_text()
    m = re.search(r"<!-- node-suite -->\n(.*?)\n<!-- /node-suite -->", text, re.S)
    assert m, "docs/network-format.md: node-suite table markers missing"
    assert m.group(1).strip() == table(cases)


if __name__ == "__main__":
    print(table())
