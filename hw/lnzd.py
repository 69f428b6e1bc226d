"""Leading-non-zero detection (LNZD): 4-input registered nodes and their tree.

Each PE offers its next non-zero source activation as a one-beat stream
(:attr:`EIEConfig.bcast_layout`: value and global index).  A node holds one
registered slot; in every cycle in which its slot is empty or being taken by
its parent, it loads the offer of its *leading* child (the lowest-numbered
child with a valid offer) and takes that child's beat, or becomes empty if
no child offers one.  Nodes form a quadtree (:attr:`EIEConfig.lnzd_levels`:
inputs grouped by four in order, the last group of a level may be smaller);
the root's slot is the central control unit's next broadcast.

Throughput is one beat per cycle; a beat offered by leaf ``k`` reaches the
root slot ``lnzd_depth`` cycles later if nothing is ahead of it.  Ready
travels combinationally from the root to the leaves (``lnzd_depth`` nodes).
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .eie_config import EIEConfig

__all__ = ["LNZDNode", "LNZDTree"]


class LNZDNode(wiring.Component):
    """One LNZD node with ``fanin`` (1..4) children and a registered output.

    Members: ``child`` (In, ``fanin`` streams), ``out`` (Out, stream); both
    carry ``layout``.  Latency: one cycle.
    """

    latency = 1

    def __init__(self, layout, fanin: int = 4):
        if not 1 <= fanin <= 4:
            raise ValueError(f"fanin: expected 1..4, got {fanin}")
        self.fanin = fanin
        super().__init__({
            "child": In(stream.Signature(layout)).array(fanin),
            "out": Out(stream.Signature(layout)),
        })

    def elaborate(self, platform):
        m = Module()
        free = Signal()
        m.d.comb += free.eq(~self.out.valid | self.out.ready)
        ahead = 0  # some lower-numbered child offers a beat
        for c in self.child:
            m.d.comb += c.ready.eq(free & ~ahead)
            ahead = ahead | c.valid
        chosen = self.child[-1].payload
        for c in reversed(self.child[:-1]):
            chosen = Mux(c.valid, c.payload, chosen)
        with m.If(free):
            m.d.sync += [self.out.valid.eq(ahead), self.out.payload.eq(chosen)]
        return m


class LNZDTree(wiring.Component):
    """The quadtree of :class:`LNZDNode` over ``config.pes`` leaves.

    Members: ``leaf`` (In, ``pes`` streams of ``config.bcast_layout``),
    ``out`` (Out, stream, the root's slot), ``empty`` (Out: no node holds a
    beat).  Latency: ``config.lnzd_depth`` cycles.
    """

    def __init__(self, config: EIEConfig):
        if not isinstance(config, EIEConfig):
            raise TypeError(f"config must be an EIEConfig, not {config!r}")
        self.config = config
        sig = stream.Signature(config.bcast_layout)
        super().__init__({"leaf": In(sig).array(config.pes), "out": Out(sig), "empty": Out(1)})

    @property
    def latency(self) -> int:
        return self.config.lnzd_depth

    def elaborate(self, platform):
        m = Module()
        layout = self.config.bcast_layout
        inputs = list(self.leaf)
        valids = []
        for lvl, groups in enumerate(self.config.lnzd_levels):
            outputs, pos = [], 0
            for g, fanin in enumerate(groups):
                node = LNZDNode(layout, fanin)
                m.submodules[f"node_{lvl}_{g}"] = node
                for c in range(fanin):
                    src = inputs[pos + c]
                    m.d.comb += [node.child[c].valid.eq(src.valid),
                                 node.child[c].payload.eq(src.payload),
                                 src.ready.eq(node.child[c].ready)]
                pos += fanin
                outputs.append(node.out)
                valids.append(node.out.valid)
            inputs = outputs
        root = inputs[0]
        m.d.comb += [self.out.valid.eq(root.valid), self.out.payload.eq(root.payload),
                     root.ready.eq(self.out.ready)]
        busy = 0
        for v in valids:
            busy = busy | v
        m.d.comb += self.empty.eq(~busy)
        return m
