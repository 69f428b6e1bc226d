import os

import pytest

from nnloom.sim.runner import available_simulators


#: ``NNLOOM_EXTENDED=1`` runs the tests marked ``extended`` too (minutes more)
EXTENDED = os.environ.get("NNLOOM_EXTENDED") == "1"


def pytest_report_header(config):
    return [f"nnloom simulators: {', '.join(available_simulators()) or 'none'}",
            f"nnloom cache: {os.environ.get('NNLOOM_CACHE', '~/.cache/nnloom')}",
            f"nnloom extended tests: {'on' if EXTENDED else 'off (NNLOOM_EXTENDED=1)'}"]


def pytest_collection_modifyitems(config, items):
    """Tests marked ``extended`` (gate-level simulation, further RTL
    configurations) are opt-in: they would add minutes to the default run."""
    if EXTENDED:
        return
    skip = pytest.mark.skip(reason="extended test (opt-in): set NNLOOM_EXTENDED=1 to run it")
    for item in items:
        if "extended" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def simulator():
    """The simulator the cocotb tests use: $NNLOOM_SIM, default Verilator."""
    return os.environ.get("NNLOOM_SIM", "verilator")


@pytest.fixture
def one_line_error(capsys):
    """``check(argv, *needles)``: ``nnloom argv`` exits 2 with exactly one
    line on stderr, ``nnloom: ...``, no traceback, holding every needle;
    returns that line."""
    from nnloom.gen.cli import main

    def check(argv, *needles):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("nnloom: ") and "Traceback" not in err, err
        for needle in needles:
            assert needle in err, err
        return err

    return check
