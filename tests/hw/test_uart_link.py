"""nnloom.hw.uart_link's synchronous runner over a scripted port (what pyserial sees):
the exact request bytes, NAK retries, checksums and timeouts.  The protocol
against the RTL is tests/sim/test_uart_host.py."""

import pytest

from nnloom.hw import uart_link as link
from nnloom.hw.uart_bridge import CMD_MEM_READ, CMD_MEM_WRITE, CMD_REG_WRITE, NAK


class ScriptedPort:
    """Records writes; answers reads from a script of byte strings."""

    def __init__(self, replies):
        self.replies = bytearray(b"".join(replies))
        self.written = bytearray()

    def write(self, data):
        self.written += data

    def read(self, n):
        out = bytes(self.replies[:n])
        del self.replies[:n]
        return out


def _xor(bs):
    x = 0
    for b in bs:
        x ^= b
    return x


def test_request_layout():
    req = link.request(CMD_MEM_WRITE, 0x1234, 2, [0x11223344, 0xAABBCCDD])
    assert req[:6] == bytes([0x57, 0x34, 0x12, 0, 0, 1])
    assert req[6:14] == bytes([0x44, 0x33, 0x22, 0x11, 0xDD, 0xCC, 0xBB, 0xAA])
    assert _xor(req) == 0 and len(req) == 15
    with pytest.raises(ValueError):
        link.request(CMD_MEM_WRITE, 2, 1, [0])
    with pytest.raises(ValueError):
        link.request(CMD_MEM_READ, 0, 257)


def test_write_bytes_splits_into_256_word_requests():
    data = bytes(range(256)) * 5            # 1280 bytes = 320 words: 256 + 64
    port = ScriptedPort([bytes([CMD_MEM_WRITE])] * 2)
    link.run_sync(link.write_bytes(0x100, data), port)
    first = link.request(CMD_MEM_WRITE, 0x100, 256,
                         [int.from_bytes(data[i:i + 4], "little") for i in range(0, 1024, 4)])
    assert bytes(port.written[:len(first)]) == first
    assert port.written[len(first) + 1:len(first) + 5] == (0x100 + 1024).to_bytes(4, "little")
    assert len(port.written) == len(first) + 6 + 64 * 4 + 1     # CMD ADDR COUNT, data, CHK


def test_nak_is_retried_then_fails():
    port = ScriptedPort([bytes([NAK]), bytes([CMD_REG_WRITE])])
    link.run_sync(link.write_reg("CTRL", 2), port)
    assert len(port.written) == 2 * 11
    port = ScriptedPort([bytes([NAK])] * link.RETRIES)
    with pytest.raises(link.LinkError, match="NAK 3 times"):
        link.run_sync(link.write_reg("CTRL", 2), port)


def test_read_checks_response_checksum_and_timeout():
    body = (0xDEADBEEF).to_bytes(4, "little")
    good = bytes([CMD_MEM_READ]) + body
    port = ScriptedPort([good + bytes([_xor(good)])])
    assert link.run_sync(link.read_words(0, 1), port) == [0xDEADBEEF]
    port = ScriptedPort([good + bytes([_xor(good) ^ 1])])
    with pytest.raises(link.LinkError, match="checksum"):
        link.run_sync(link.read_words(0, 1), port)
    port = ScriptedPort([good[:3]])
    with pytest.raises(link.LinkError, match="timeout"):
        link.run_sync(link.read_words(0, 1), port)


def test_cli_run_without_a_port_is_one_line(capsys, tmp_path):
    from nnloom.gen.cli import main

    rc = main(["fpga", "run", "examples/digits_mlp.toml", "--board", "ulx3s-85f",
               "--port", str(tmp_path / "no-such-tty")])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("nnloom: fpga run: --port: ") and err.count("\n") == 1
