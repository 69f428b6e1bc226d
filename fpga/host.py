"""``nnloom fpga run``: inference on a board over its USB UART (pyserial).

The protocol is :mod:`hw.uart_link`, the code the cocotb test runs against the
board top's RTL (sim/tb/uart_tb.py); this module only opens the port and
checks that the bitstream on the board is the one the network needs (the
INFO register: array side, data width, layer counters, version).
"""

from __future__ import annotations

import numpy as np

from nnloom.hw.accel import VERSION

from nnloom.hw import uart_link as link

__all__ = ["open_port", "check_board", "run_samples"]


def open_port(device: str, baud: int, timeout_s: float = 2.0):
    import serial   # pyserial; only the host run needs it

    return serial.Serial(device, baudrate=baud, bytesize=8, parity="N", stopbits=1,
                         timeout=timeout_s)


def check_board(port, cfg) -> int:
    """Read INFO; raise :class:`hw.uart_link.LinkError` if the board holds
    another configuration."""
    info = link.run_sync(link.read_reg("INFO"), port)
    want = cfg.size | cfg.data_width << 8 | cfg.layers << 16 | VERSION << 24
    if info != want:
        raise link.LinkError(f"the board reports INFO {info:#010x}, this network needs "
                             f"{want:#010x} (P={cfg.size}, layers={cfg.layers}, version {VERSION}): "
                             "build and load the matching bitstream")
    return info


def run_samples(port, prog, reference, xq, samples) -> list[dict]:
    """Infer each test sample on the board; compare with ``reference(x)``, the
    golden model's output (the CLI passes :func:`nnloom.sim.golden.qnet.run`'s)."""
    rows = []
    for k, s in enumerate(samples):
        y, counters = link.run_sync(link.infer(prog, xq[s], load=k == 0), port)
        want = reference(xq[s])
        rows.append({"sample": int(s), "output": y.tolist(), "class": int(np.argmax(y)),
                     "bit_exact": bool(np.array_equal(y, want)), "cycles": counters["cycles"],
                     "layers": counters["layers"]})
    return rows
