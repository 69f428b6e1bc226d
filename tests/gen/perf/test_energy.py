import pytest

from nnloom.gen.perf import EYERISS_NORMALIZED, HOROWITZ_45NM, CostTable, CostTableError


def test_eyeriss_ratios():
    t = EYERISS_NORMALIZED
    assert (t.mac, t.rf, t.array, t.buffer, t.dram) == (1, 1, 2, 6, 200)
    assert t.energy(10, {"rf": 3, "dram": 1}) == 10 + 3 + 200


def test_horowitz_per_byte_figures():
    # 20 pJ per 64-bit SRAM read = 2.5 pJ/byte; 1.95 nJ per 64-bit DRAM access ~ 244 pJ/byte
    assert HOROWITZ_45NM.buffer == pytest.approx(20 / 8)
    assert HOROWITZ_45NM.dram == pytest.approx(1950 / 8, abs=0.5)


def test_user_table(tmp_path):
    p = tmp_path / "mine.toml"
    p.write_text('[costs]\nunit = "pJ"\nmac = 1\nrf = 2\narray = 3\nbuffer = 4\ndram = 5\n')
    t = CostTable.from_toml(p)
    assert t.energy(1, {"rf": 1, "array": 1, "buffer": 1, "dram": 1}) == 15


@pytest.mark.parametrize("body,field", [
    ("[costs]\nmac = 1\n", "costs.rf"),
    ("[costs]\nunit='J'\n", "costs.unit"),
    ("[costs]\nmac=-1\nrf=1\narray=1\nbuffer=1\ndram=1\n", "costs.mac"),
    ("[costs]\nmac=1\nrf=1\narray=1\nbuffer=1\ndram=1\nsram=2\n", "costs.sram"),
    ("costs = 3\n", "costs"),
    ("[costs\n", "not valid TOML"),
])
def test_bad_tables(tmp_path, body, field):
    p = tmp_path / "bad.toml"
    p.write_text(body)
    with pytest.raises(CostTableError, match=field.replace(".", r"\.")):
        CostTable.from_toml(p)
