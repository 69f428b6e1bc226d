import os

import pytest

from nnloom.sim.runner import available_simulators


def pytest_report_header(config):
    return [f"nnloom simulators: {', '.join(available_simulators()) or 'none'}",
            f"nnloom cache: {os.environ.get('NNLOOM_CACHE', '~/.cache/nnloom')}"]


@pytest.fixture(scope="session")
def simulator():
    """The simulator the cocotb tests use: $NNLOOM_SIM, default Verilator."""
    return os.environ.get("NNLOOM_SIM", "verilator")
