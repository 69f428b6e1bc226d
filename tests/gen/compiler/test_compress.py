"""Deep Compression encoder: pruning, k-means, per-PE CSC, storage, errors."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnloom.gen.compiler import CompressError, compress_layer, kmeans_share, prune, to_fixed
from nnloom.gen.compiler import MAX_Z, decode, encode, storage_bits
from nnloom.gen.compiler import CapacityError, Layer, build_image
from nnloom.hw.eie_config import EIEConfig


def worked_codes():
    """The spec's 8 x 4 example; code = 1 + column so entries are identifiable."""
    nz = {0: (0, 1, 3), 1: (2,), 2: (1, 3), 4: (2, 3), 5: (0,), 6: (3,), 7: (1,)}
    codes = np.zeros((8, 4), dtype=np.int64)
    for r, cols in nz.items():
        for c in cols:
            codes[r, c] = 1 + (r * 4 + c) % 15
    return codes


def test_worked_example_exact():
    codes = worked_codes()
    csc = encode(codes, 4)
    w = lambda r, c: 1 + (r * 4 + c) % 15  # noqa: E731
    want = [  # (entries as (row, col), z, pointers), per PE, from the spec
        ([(0, 0), (0, 1), (4, 2), (0, 3), (4, 3)], [0, 0, 1, 0, 0], [0, 1, 2, 3, 5]),
        ([(5, 0), (1, 2)], [1, 0], [0, 1, 1, 2, 2]),
        ([(2, 1), (2, 3), (6, 3)], [0, 0, 0], [0, 0, 1, 1, 3]),
        ([(7, 1)], [1], [0, 0, 1, 1, 1]),
    ]
    for k, (entries, zs, ptr) in enumerate(want):
        s = csc.slices[k]
        assert s.codes.tolist() == [w(r, c) for r, c in entries], k
        assert s.zs.tolist() == zs, k
        assert s.ptr.tolist() == ptr, k
    # only columns 1 and 3 are broadcast for a = (0, a1, 0, a3): MACs per PE 3/0/3/1
    counts = csc.counts()
    assert (counts[:, 1] + counts[:, 3]).tolist() == [3, 0, 3, 1]
    assert (decode(csc) == codes).all()


def test_kmeans_reproduces_deep_compression_figure():
    w = np.array([[2.09, -0.98, 1.48, 0.09], [0.05, -0.14, -1.08, 2.12],
                  [-0.91, 1.92, 0, -1.03], [1.87, 0, 1.53, 1.49]])
    cent, labels = kmeans_share(w, 4)
    assert labels.reshape(4, 4).tolist() == [[3, 0, 2, 1], [1, 1, 0, 3], [0, 3, 1, 0],
                                             [3, 1, 2, 2]]
    assert np.allclose(cent, [-1.0, 0.0, 1.5, 2.0])


@pytest.mark.parametrize("gap,fillers", [(14, 0), (15, 0), (16, 1), (31, 1), (32, 2), (47, 2),
                                         (48, 3)])
def test_filler_exactly_when_run_exceeds_15(gap, fillers):
    pes = 3
    codes = np.zeros(((gap + 2) * pes, 1), dtype=np.int64)
    codes[0, 0] = 5                    # local row 0 of PE 0
    codes[(gap + 1) * pes, 0] = 7      # local row gap + 1: a run of `gap` zeros
    csc = encode(codes, pes)
    s = csc.slices[0]
    assert csc.fillers == fillers
    assert s.entries == 2 + fillers
    assert all(z <= MAX_Z for z in s.zs)
    assert (decode(csc) == codes).all()


@settings(max_examples=60, deadline=None)
@given(rows=st.integers(1, 70), cols=st.integers(1, 9), pes=st.integers(1, 8),
       density=st.floats(0.0, 1.0), seed=st.integers(0, 2**32 - 1))
def test_round_trip_random(rows, cols, pes, density, seed):
    rng = np.random.default_rng(seed)
    codes = np.where(rng.random((rows, cols)) < density, rng.integers(1, 16, (rows, cols)), 0)
    csc = encode(codes, pes)
    assert (decode(csc) == codes).all()
    runs = 0  # fillers: one per 16 zeros of a run of more than 15 before a non-zero
    for k in range(pes):
        for j in range(cols):
            prev = -1
            for r in np.flatnonzero(codes[k::pes, j]):
                runs += (r - prev - 1) // (MAX_Z + 1)
                prev = r
    assert csc.fillers == runs
    assert csc.entries == np.count_nonzero(codes) + runs


def test_prune_keeps_largest():
    w = np.array([[0.1, -3.0, 0.5], [2.0, -0.2, 0.0]])
    assert prune(w, 0.5).tolist() == [[False, True, True], [True, False, False]]
    assert prune(w, 1.0).all()
    assert prune(w, 1e-9).sum() == 1


@pytest.mark.parametrize("density", [0, -0.1, 1.01, float("nan"), "half"])
def test_density_outside_range(density):
    with pytest.raises(CompressError) as e:
        compress_layer(np.ones((4, 4)), density=density, pes=2)
    assert e.value.field == "density" and "(0, 1]" in str(e.value)


def test_codebook_larger_than_codes_can_address():
    with pytest.raises(CompressError) as e:
        compress_layer(np.ones((4, 4)), density=0.5, pes=2, clusters=16)
    assert e.value.field == "clusters" and "1..15" in str(e.value)
    cfg = EIEConfig(pes=2)
    csc = encode(np.ones((4, 4), dtype=np.int64), 2)
    with pytest.raises(CapacityError) as e:
        build_image(cfg, [Layer(csc, tuple(range(17)))])
    assert e.value.field == "layers[0].codebook" and "16" in str(e.value)


@pytest.mark.parametrize("rows,cols,density,field", [
    (4 * 16 + 1, 8, 0.5, "layers[0].rows"),     # more outputs than pes x act_depth
    (8, 4 * 16 + 1, 0.5, "layers[0].cols"),
    (64, 31, 1.0, "pointers"),                  # 32 pointers > 2 x ptr_depth
    (64, 15, 1.0, "entries"),                   # 16 x 15 entries per PE > 8 x 16
])
def test_matrix_too_large_for_memories(rows, cols, density, field):
    cfg = EIEConfig(pes=4, act_depth=16, entry_rows=16, ptr_depth=15)
    layer = compress_layer(np.random.default_rng(0).normal(size=(rows, cols)),
                           density=density, pes=4)
    with pytest.raises(CapacityError) as e:
        build_image(cfg, [Layer(layer.csc, tuple(layer.codebook))])
    assert e.value.field == field


def test_compress_layer_codebook_and_storage():
    rng = np.random.default_rng(3)
    w = rng.normal(size=(40, 30))
    cl = compress_layer(w, density=0.1, pes=4, frac_bits=8)
    assert cl.dense_nonzeros == math.ceil(0.1 * w.size)
    assert np.count_nonzero(cl.codes) == cl.dense_nonzeros
    assert cl.codebook[0] == 0 and len(cl.codebook) == 16
    assert (cl.codebook[1:] == to_fixed(cl.centroids, 8, 16)).all()
    # every kept weight is represented by its nearest centroid
    kept = w[cl.codes != 0]
    nearest = np.abs(kept[:, None] - cl.centroids[None, :]).min(axis=1)
    assert np.allclose(np.abs(kept - cl.centroids[cl.codes[cl.codes != 0] - 1]), nearest)
    bits = storage_bits(cl.csc)
    e = cl.csc.entries
    assert bits == {"codes": 4 * e, "indices": 4 * e, "pointers": 16 * 31 * 4,
                    "codebook": 256, "total": 8 * e + 16 * 31 * 4 + 256}
    assert cl.compression_ratio() == pytest.approx(40 * 30 * 32 / bits["total"])


def test_to_fixed_rounds_half_even_and_saturates():
    assert to_fixed([0.5 / 256, 1.5 / 256, -0.5 / 256, 200.0, -200.0], 8, 16).tolist() == \
        [0, 2, 0, 32767, -32768]


@pytest.mark.parametrize("pes,rows,cols,density", [(4, 200, 30, 0.05), (3, 77, 11, 0.3),
                                                   (8, 500, 20, 0.02)])
def test_random_counts_match_encoder(pes, rows, cols, density):
    """nnloom.gen.perf.eie.random_counts (used by the benches) equals the encoder's
    entry counts, fillers included, on the same random mask."""
    from nnloom.gen.perf import random_counts

    counts = random_counts(np.random.default_rng(1), rows, cols, pes, density)
    rng = np.random.default_rng(1)
    codes = np.zeros((rows, cols), dtype=np.int64)
    for k in range(pes):
        codes[k::pes] = (rng.random((cols, len(range(k, rows, pes)))) < density).T
    assert (encode(codes, pes).counts() == counts).all()
