"""EIE config checks, emitted Verilog lint and determinism, the emit command."""

import gc
import warnings

import pytest

from nnloom.gen.cli import main
from nnloom.gen.verilog import to_verilog
from nnloom.hw.catalog import lookup
from nnloom.hw.eie import EIECluster, EIEConfig
from nnloom.hw.eie_pe import EIEPE
from nnloom.hw.lnzd import LNZDTree
from nnloom.hw.params import ParamError
from nnloom.sim.lint import assert_lint_clean

EMITS = {  # catalog name, flags: the acceptance commands
    "eie-pe": {},
    "lnzd-tree": {"pes": 16},
    "eie": {"pes": 4},
    "eie-6": {"pes": 6, "queue_depth": 2},
}


def _emit(name):
    entry = lookup(name.split("-6")[0])
    cfg = entry.config_class()(**EMITS[name])
    return to_verilog(entry.build(cfg))


@pytest.mark.parametrize("name", list(EMITS))
def test_lint_clean_and_deterministic(name):
    text = _emit(name)
    assert_lint_clean(text)
    assert _emit(name) == text


@pytest.mark.parametrize("field,value,allowed", [
    ("pes", 0, "1..64"), ("pes", 65, "1..64"), ("queue_depth", 0, "1..64"),
    ("frac_bits", 16, "0..15"), ("act_depth", 0, "1..1024"), ("entry_rows", 8193, "1..8192"),
    ("codebooks", 17, "1..16"),
])
def test_param_ranges(field, value, allowed):
    with pytest.raises(ParamError) as e:
        EIEConfig(**{field: value})
    assert e.value.name == field and allowed in str(e.value)


def test_cross_field_checks():
    with pytest.raises(ParamError, match="frac_bits"):
        EIEConfig(act_width=8, frac_bits=8)
    with pytest.raises(ParamError, match="acc_width"):
        EIEConfig(act_width=16, acc_width=31)


def test_constructors_check_types():
    # A component that refuses its arguments is never elaborated: collect it
    # here, with Amaranth's "created but never used" warning silenced.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(TypeError):
            EIECluster(object())
        with pytest.raises(TypeError):
            LNZDTree(object())
        with pytest.raises(ValueError, match="index"):
            EIEPE(EIEConfig(pes=4), 4)
        gc.collect()


def test_derived_widths():
    cfg = EIEConfig(pes=4, act_depth=16, entry_rows=64, ptr_depth=32)
    assert cfg.max_len == 64 and cfg.index_width == 6 and cfg.len_width == 7
    assert cfg.ptr_width == 10 and cfg.entries == 512 and cfg.pointers == 64
    assert [cfg.local_len(10, k) for k in range(4)] == [3, 3, 2, 2]
    assert cfg.writeout_cycles(10) == 4


def test_cli_emit(tmp_path, capsys):
    out = tmp_path / "lnzd.v"
    assert main(["emit", "lnzd-tree", "--pes", "16", "-o", str(out)]) == 0
    assert out.read_text() == to_verilog(LNZDTree(EIEConfig(pes=16)))
    assert main(["emit", "eie", "--pes", "65"]) == 2
    assert "--pes: expected 1..64, got 65" in capsys.readouterr().err
