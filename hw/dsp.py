"""Registered multipliers: one portable description and DSP-block lowerings.

:class:`RegisteredMultiplier` computes ``p = a * b`` (exact: ``a_width +
b_width`` bits, both operands signed or both unsigned) through three
register stages, so a product leaves :data:`MULT_LATENCY` = 3 cycles after
its operands were presented:

* cycle 0: ``a`` and ``b`` are captured in the operand registers;
* cycle 1: their product is captured in the product register;
* cycle 2: the product is copied into the output register;
* from cycle 3: ``p`` holds the product (until the operands of cycle 1 arrive).

The operand and product registers are the DSP block's own (on ECP5 and
iCE40); the output register is always in the fabric.  It takes the long route
out of the DSP block (on the ECP5-85F nextpnr places the adder that consumes
the product far from the DSP rows) off the consumer's path, so the route from
the DSP block and the consumer's adder are in different cycles (measured
figures: docs/systolic.md).

No enable: a new product every cycle.  The registers are reset to 0 with the
clock domain's reset, so after a reset ``p`` reads 0 until the first operands
come through.

Lowerings (``lowering=``; every one has the same ports, latency and values):

``"portable"``
    Amaranth ``*`` between the operand and the product registers, then the
    output register: for simulation and for any target.  (Yosys maps the
    ``*`` to an unregistered DSP block and keeps the registers in the
    fabric: Yosys never sets the DSP block's own registers.)
``"ecp5"``
    One ``MULT18X18D`` (Lattice ECP5) with its A and B input registers
    (``REG_INPUTA_CLK``/``REG_INPUTB_CLK`` = ``"CLK0"``) and its output
    register (``REG_OUTPUT_CLK`` = ``"CLK0"``) on, no pipeline register, all
    three on ``CLK0``/``CE0``/``RST0`` = the domain's clock, 1, the domain's
    reset (``RESETMODE = "SYNC"``, ``GSR = "DISABLED"``).  The other
    clocks, enables and resets are tied to 0; the shift-cascade inputs
    SRIA/SRIB stay unconnected (:data:`ECP5_UNCONNECTED`).  Operands up to
    18 bits.
``"ice40"``
    One ``SB_MAC16`` (Lattice iCE40) as a 16 x 16 multiplier: ``A_REG`` and
    ``B_REG`` on, the 32-bit product through its pipeline register
    (``PIPELINE_16x16_MULT_REG2``) to both output halves
    (``TOPOUTPUT_SELECT`` = ``BOTOUTPUT_SELECT`` = 3), ``CE`` = 1, the
    domain's reset on ``IRSTTOP``/``IRSTBOT`` (its registers reset
    asynchronously; after the reset is released the state is the same).
    Operands up to 16 bits.
``"auto"``
    Chosen at elaboration from the platform: ``"ecp5"`` on an ECP5 platform,
    ``"ice40"`` on an iCE40 platform, ``"portable"`` otherwise (no platform,
    as in ``nnloom emit`` and simulation, or any other target).

The ECP5 and iCE40 lowerings instantiate vendor primitives: their Verilog
needs the vendor's cell library (Yosys's ``synth_ecp5`` / ``synth_ice40`` have
it) to be simulated or linted.
"""

from __future__ import annotations

from amaranth.hdl import ClockSignal, Const, Instance, Module, ResetSignal, Shape, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["MULT_LATENCY", "LOWERINGS", "ECP5_UNCONNECTED", "RegisteredMultiplier",
           "lowering_for", "unshared_register", "UNSHARED_FF"]

#: cycles from operands at ``a``/``b`` to their product at ``p``
MULT_LATENCY = 3

#: the values of ``RegisteredMultiplier(lowering=...)``
LOWERINGS = ("auto", "portable", "ecp5", "ice40")

#: MULT18X18D input buses the ECP5 lowering leaves unconnected (SRIA0..17, SRIB0..17)
ECP5_UNCONNECTED = ("SRIA", "SRIB")

#: widest operand each primitive takes (signed or unsigned)
MAX_WIDTH = {"ecp5": 18, "ice40": 16}


def lowering_for(platform) -> str:
    """The lowering ``"auto"`` picks for ``platform`` (None: ``"portable"``).

    Amaranth's Lattice platforms name their ``family``: "ecp5" (LatticePlatform)
    and "iCE40" (SiliconBluePlatform, as the iCEBreaker's)."""
    family = str(getattr(platform, "family", "")).lower()
    return family if family in ("ecp5", "ice40") else "portable"


#: the flip-flop primitive :func:`unshared_register` instantiates per family:
#: a D flip-flop with synchronous clear (Lattice FPGA libraries)
UNSHARED_FF = {"ecp5": "FD1S3IX", "ice40": "SB_DFFSR"}


def unshared_register(m: Module, value, lowering: str, *, name: str,
                      domain: str = "sync") -> Signal:
    """``value`` (one bit) through a register that synthesis does not merge
    with identical registers elsewhere; returns the register's output.

    Yosys merges registers with the same input (``opt_merge``).  In a
    systolic array a control pulse (WS ``first``, OS ``last``) reaches every
    PE of an anti-diagonal in the same cycle, so the per-PE copies are all
    equal and become one register whose output crosses the die to a dozen
    PEs (at 12 x 12 on the ECP5-85F, a long route).  With ``lowering``
    ``"ecp5"`` or ``"iCE40"`` the register is an instantiated flip-flop
    (:data:`UNSHARED_FF`: synchronous clear by the domain's reset, like an
    Amaranth register), which Yosys does not merge; otherwise (``"portable"``)
    an ordinary Amaranth register.  Same timing and value either way: 0 after
    reset, then ``value`` one cycle late."""
    q = Signal(name=name)
    if lowering == "ecp5":
        m.submodules[f"{name}_ff"] = Instance(
            "FD1S3IX", p_GSR="DISABLED", i_CK=ClockSignal(domain), i_CD=ResetSignal(domain, allow_reset_less=True),
            i_D=value, o_Q=q)
    elif lowering == "ice40":
        m.submodules[f"{name}_ff"] = Instance(
            "SB_DFFSR", i_C=ClockSignal(domain), i_R=ResetSignal(domain, allow_reset_less=True), i_D=value, o_Q=q)
    elif lowering == "portable":
        m.d[domain] += q.eq(value)
    else:
        raise ValueError(f"lowering: expected ecp5 | ice40 | portable, got {lowering!r}")
    return q


class RegisteredMultiplier(wiring.Component):
    """``p = a * b`` with :data:`MULT_LATENCY` cycles of latency.

    Parameters: ``a_shape``, ``b_shape`` (Amaranth shapes, both signed or
    both unsigned, 1..18 bits), ``lowering`` (one of :data:`LOWERINGS`),
    ``domain`` (the clock domain, default ``"sync"``).

    Members: ``a`` (In, ``a_shape``), ``b`` (In, ``b_shape``), ``p`` (Out,
    signed or unsigned ``a_width + b_width`` bits).

    No clock enable per operand: the two MULT18X18D of an ECP5 DSP slice
    share their CLK/CE/RST signals, so multipliers with enables of their own
    cannot pair in a slice (an attempt with the WS weight in the B register,
    enabled by each PE's ``first``, left nextpnr's placer unable to
    legalize 144 multipliers in the 78 slices).
    """

    latency = MULT_LATENCY

    def __init__(self, a_shape, b_shape, *, lowering: str = "auto", domain: str = "sync"):
        a_shape, b_shape = Shape.cast(a_shape), Shape.cast(b_shape)
        if a_shape.signed != b_shape.signed:
            raise ValueError(f"b_shape: expected the signedness of a_shape ({a_shape}), "
                             f"got {b_shape}")
        for name, shape in (("a_shape", a_shape), ("b_shape", b_shape)):
            if not 1 <= shape.width <= 18:
                raise ValueError(f"{name}: expected a width of 1..18 bits, got {shape}")
        if lowering not in LOWERINGS:
            raise ValueError(f"lowering: expected one of {' | '.join(LOWERINGS)}, "
                             f"got {lowering!r}")
        for name, width in MAX_WIDTH.items():
            if lowering == name and max(a_shape.width, b_shape.width) > width:
                raise ValueError(f"lowering: {name!r} takes operands of at most {width} bits, "
                                 f"got {a_shape} x {b_shape}")
        if not isinstance(domain, str):
            raise TypeError(f"domain must be a clock domain name, not {domain!r}")
        self.a_shape, self.b_shape = a_shape, b_shape
        self.p_shape = Shape(a_shape.width + b_shape.width, a_shape.signed)
        self.lowering = lowering
        self.domain = domain
        super().__init__({"a": In(a_shape), "b": In(b_shape), "p": Out(self.p_shape)})

    def resolved_lowering(self, platform) -> str:
        """The lowering used on ``platform`` (``"auto"`` resolved; a
        primitive too narrow for the operands falls back to ``"portable"``)."""
        low = lowering_for(platform) if self.lowering == "auto" else self.lowering
        if low in MAX_WIDTH and max(self.a_shape.width, self.b_shape.width) > MAX_WIDTH[low]:
            return "portable"
        return low

    def elaborate(self, platform):
        m = Module()
        low = self.resolved_lowering(platform)
        product = Signal(self.p_shape, name="product")  # the product register's output
        if low == "portable":
            a_r = Signal(self.a_shape, name="a_reg")
            b_r = Signal(self.b_shape, name="b_reg")
            m.d[self.domain] += [a_r.eq(self.a), b_r.eq(self.b), product.eq(a_r * b_r)]
        elif low == "ecp5":
            self._ecp5(m, product)
        else:
            self._ice40(m, product)
        p_r = Signal(self.p_shape, name="p_reg")
        m.d[self.domain] += p_r.eq(product)
        m.d.comb += self.p.eq(p_r)
        return m

    def _operand(self, m, value, width: int, name: str) -> Signal:
        """``value`` sign- or zero-extended to ``width`` bits."""
        ext = Signal(Shape(width, self.a_shape.signed), name=name)
        m.d.comb += ext.eq(value)
        return ext

    def _ecp5(self, m, product):
        a = self._operand(m, self.a, 18, "a18")
        b = self._operand(m, self.b, 18, "b18")
        prod = Signal(36, name="p36")
        sign = Const(int(self.a_shape.signed), 1)
        zero = Const(0, 1)
        ports = {}
        for k in range(18):
            ports[f"i_A{k}"] = a[k]
            ports[f"i_B{k}"] = b[k]
            ports[f"i_C{k}"] = zero
        for k in range(36):
            ports[f"o_P{k}"] = prod[k]
        # Every pin but the shift-cascade inputs is connected: the clocks,
        # enables and resets 1..3 to 0, the unused outputs (registered
        # operands, shift outputs) to wires of their own.  SRIA/SRIB
        # (:data:`ECP5_UNCONNECTED`) can only be driven by the neighbouring
        # block's SROA/SROB: nextpnr fails to route a constant to them, so
        # they stay unconnected, as in Yosys's own MULT18X18D mapping.
        for k in range(1, 4):
            ports[f"i_CLK{k}"] = ports[f"i_CE{k}"] = ports[f"i_RST{k}"] = zero
        unused = {name: Signal(18, name=f"{name.lower()}_unused")
                  for name in ("SROA", "SROB", "ROA", "ROB", "ROC")}
        for k in range(18):
            for name, sig in unused.items():
                ports[f"{'i' if name.startswith('SRI') else 'o'}_{name}{k}"] = sig[k]
        ports["o_SIGNEDP"] = Signal(name="signedp_unused")
        params = {
            "p_REG_INPUTA_CLK": "CLK0", "p_REG_INPUTA_CE": "CE0", "p_REG_INPUTA_RST": "RST0",
            "p_REG_INPUTB_CLK": "CLK0", "p_REG_INPUTB_CE": "CE0", "p_REG_INPUTB_RST": "RST0",
            "p_REG_INPUTC_CLK": "NONE", "p_REG_PIPELINE_CLK": "NONE",
            "p_REG_OUTPUT_CLK": "CLK0", "p_REG_OUTPUT_CE": "CE0", "p_REG_OUTPUT_RST": "RST0",
            "p_CLK0_DIV": "ENABLED", "p_HIGHSPEED_CLK": "NONE", "p_GSR": "DISABLED",
            "p_CAS_MATCH_REG": "FALSE", "p_SOURCEB_MODE": "B_SHIFT",
            "p_MULT_BYPASS": "DISABLED", "p_RESETMODE": "SYNC",
        }
        m.submodules.mult18 = Instance(
            "MULT18X18D", **params, **ports,
            i_CLK0=ClockSignal(self.domain), i_CE0=Const(1, 1), i_RST0=ResetSignal(self.domain, allow_reset_less=True),
            i_SIGNEDA=sign, i_SIGNEDB=sign, i_SOURCEA=zero, i_SOURCEB=zero)
        m.d.comb += product.eq(prod[:self.p_shape.width])

    def _ice40(self, m, product):
        a = self._operand(m, self.a, 16, "a16")
        b = self._operand(m, self.b, 16, "b16")
        prod = Signal(32, name="p32")
        sign = int(self.a_shape.signed)
        zero = Const(0, 1)
        rst = ResetSignal(self.domain, allow_reset_less=True)
        m.submodules.mac16 = Instance(
            "SB_MAC16",
            p_NEG_TRIGGER=Const(0, 1), p_C_REG=Const(0, 1), p_A_REG=Const(1, 1),
            p_B_REG=Const(1, 1), p_D_REG=Const(0, 1),
            p_TOP_8x8_MULT_REG=Const(0, 1), p_BOT_8x8_MULT_REG=Const(0, 1),
            p_PIPELINE_16x16_MULT_REG1=Const(0, 1), p_PIPELINE_16x16_MULT_REG2=Const(1, 1),
            p_TOPOUTPUT_SELECT=Const(3, 2), p_TOPADDSUB_LOWERINPUT=Const(0, 2),
            p_TOPADDSUB_UPPERINPUT=Const(0, 1), p_TOPADDSUB_CARRYSELECT=Const(0, 2),
            p_BOTOUTPUT_SELECT=Const(3, 2), p_BOTADDSUB_LOWERINPUT=Const(0, 2),
            p_BOTADDSUB_UPPERINPUT=Const(0, 1), p_BOTADDSUB_CARRYSELECT=Const(0, 2),
            p_MODE_8x8=Const(0, 1), p_A_SIGNED=Const(sign, 1), p_B_SIGNED=Const(sign, 1),
            i_CLK=ClockSignal(self.domain), i_CE=Const(1, 1),
            i_A=a, i_B=b, i_C=Const(0, 16), i_D=Const(0, 16),
            i_AHOLD=zero, i_BHOLD=zero, i_CHOLD=zero, i_DHOLD=zero,
            i_IRSTTOP=rst, i_IRSTBOT=rst, i_ORSTTOP=rst, i_ORSTBOT=rst,
            i_OLOADTOP=zero, i_OLOADBOT=zero, i_ADDSUBTOP=zero, i_ADDSUBBOT=zero,
            i_OHOLDTOP=zero, i_OHOLDBOT=zero, i_CI=zero, i_ACCUMCI=zero, i_SIGNEXTIN=zero,
            o_O=prod, o_CO=Signal(name="co_unused"), o_ACCUMCO=Signal(name="accumco_unused"),
            o_SIGNEXTOUT=Signal(name="signextout_unused"))
        m.d.comb += product.eq(prod[:self.p_shape.width])
