"""The components that ``nnloom emit`` knows, by name.

Each entry names the module, its config class and its component class; the
import happens only when the entry is used, so a broken optional component
cannot stop the others from being listed.  Add one line per component.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

__all__ = ["Entry", "COMPONENTS", "lookup"]


@dataclass(frozen=True)
class Entry:
    name: str
    module: str
    config: str
    component: str
    summary: str

    def config_class(self):
        return getattr(importlib.import_module(self.module), self.config)

    def component_class(self):
        return getattr(importlib.import_module(self.module), self.component)

    def build(self, config):
        """Elaborate-ready component instance for ``config``."""
        return self.component_class()(config)


COMPONENTS: dict[str, Entry] = {e.name: e for e in [
    Entry("systolic", "nnloom.hw.systolic", "SystolicConfig", "SystolicArray",
          "R x C systolic MAC array, weight- or output-stationary"),
    Entry("systolic-pe", "nnloom.hw.systolic", "SystolicConfig", "SystolicPE",
          "one processing element of the systolic array"),
    Entry("eyeriss-pe", "nnloom.hw.eyeriss", "EyerissConfig", "EyerissPE",
          "one Eyeriss row-stationary PE (filter/ifmap/psum scratchpads, zero gating)"),
    Entry("eyeriss-array", "nnloom.hw.eyeriss", "EyerissConfig", "EyerissArray",
          "H x W Eyeriss row-stationary PE array with global buffer and access counters"),
    Entry("eie", "nnloom.hw.eie", "EIEConfig", "EIECluster",
          "EIE sparse cluster: N PEs, LNZD tree, central control unit"),
    Entry("eie-pe", "nnloom.hw.eie_pe", "EIEConfig", "EIEPE",
          "one EIE processing element (queue, pointers, sparse memory, MAC)"),
    Entry("lnzd-tree", "nnloom.hw.lnzd", "EIEConfig", "LNZDTree",
          "EIE leading-non-zero-detect quadtree over N PEs"),
    Entry("razor-sram", "nnloom.hw.razor_sram", "RazorSramConfig", "RazorSram",
          "Razor-flagged SRAM with none/word/bit fault masking and an LFSR injector"),
    Entry("axi-reader", "nnloom.hw.axi_master", "AxiReaderConfig", "AxiReader",
          "AXI4 read master: (addr, beats) commands -> data stream, 4 KB-safe bursts"),
    Entry("axi-writer", "nnloom.hw.axi_master", "AxiWriterConfig", "AxiWriter",
          "AXI4 write master: (addr, beats) commands + data stream -> bursts"),
    Entry("axil-regs", "nnloom.hw.axi_lite", "AxiLiteRegsConfig", "AxiLiteRegs",
          "AXI4-Lite slave -> simple register bus (addr, w_en, r_en, r_data)"),
    Entry("accel", "nnloom.hw.accel", "AccelConfig", "Accelerator",
          "the whole accelerator: P x P WS array, buffers, controller, DMA, AXI4 + AXI4-Lite"),
    Entry("minerva-lane", "nnloom.hw.minerva", "MinervaConfig", "MinervaLanes",
          "Minerva FC lanes: threshold pruning, Razor-masked weight SRAMs, ReLU"),
]}


def lookup(name: str) -> Entry:
    try:
        return COMPONENTS[name]
    except KeyError:
        raise KeyError(name) from None
