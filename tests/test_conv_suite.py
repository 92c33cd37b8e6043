"""benchmarks/conv_suite.py's floor: each layer's three passes as matrix products of its own shapes."""
import importlib.util
import os
import sys

import numpy as np
import pytest

_DIR = os.path.join(os.path.dirname(__file__), "..", "benchmarks")


@pytest.fixture(scope="module")
def suite():
    sys.path.insert(0, _DIR)
    try:
        spec = importlib.util.spec_from_file_location("conv_suite", os.path.join(_DIR, "conv_suite.py"))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path.remove(_DIR)


def _case(kind, n, c, k, sp, f, s, p, d, g):
    return ("test", kind, n, c, k, sp, f, s, p, d, g)


@pytest.mark.parametrize("case,winograd", [
    (_case("conv", 2, 8, 16, (12, 12), 3, 1, 1, 1, 1), True),
    (_case("conv", 2, 8, 16, (12, 12), 5, 1, 2, 1, 1), True),
    (_case("conv", 2, 8, 16, (12, 12), 3, 2, 1, 1, 1), False),     # strided: no Winograd form
    (_case("conv", 2, 8, 16, (12, 12), 3, 1, 2, 2, 1), True),      # dilated: its phases' tiles
    (_case("conv", 2, 8, 16, (6, 8, 8), 3, 1, 1, 1, 1), True),      # 3-D: the depth taps in the products
    (_case("conv", 2, 8, 16, (6, 8, 8), 3, 1, 2, 2, 1), False),     # 3-D dilated: none
    (_case("convT", 2, 16, 8, (6, 6), 4, 2, 1, 1, 1), False),
])
def test_layer_floor_runs_three_passes_in_one_of_their_forms(suite, case, winograd):
    x, w, kw = suite.make(case, np.float32, np.random.default_rng(0))
    run, forms = suite.layer_floor(case, x, w, kw, np.random.default_rng(0))
    run()
    passes = forms.split(" + ")
    assert len(passes) == 3
    assert all(p in ("cols @ W", "W @ cols", "g @ W", "W @ g", "cols^T @ g", "g @ cols^T", "rotated cols @ W",
                     "rotated W @ cols", "Winograd multiply") for p in passes)
    if not winograd:
        assert "Winograd multiply" not in passes
    if case[7] != 1:
        assert not any(p.startswith("rotated") for p in passes)


def test_layers_without_products_have_no_floor(suite):
    rng = np.random.default_rng(0)
    for case in (_case("conv", 2, 8, 8, (12, 12), 3, 2, 1, 1, 8),     # strided depthwise
                 _case("conv", 2, 8, 8, (12, 12), 3, 1, 1, 1, 2),     # grouped
                 _case("maxpool", 2, 8, 8, (12, 12), 2, 2, 0, 1, 1)):
        x, w, kw = suite.make(case, np.float32, rng)
        assert suite.layer_floor(case, x, w, kw, rng) == (None, "-")


@pytest.mark.parametrize("case", [_case("conv", 2, 8, 8, (12, 12), 3, 1, 1, 1, 8),
                                  _case("conv", 2, 4, 4, (40,), 5, 1, 2, 1, 4)])
def test_a_depthwise_layers_floor_is_its_arithmetic(suite, case):
    x, w, kw = suite.make(case, np.float32, np.random.default_rng(0))
    run, forms = suite.layer_floor(case, x, w, kw, np.random.default_rng(0))
    run()
    passes = forms.split(" + ")
    assert [p.split(",")[0] for p in passes] == ["multiply-adds", "multiply-adds", "dots"]


def test_the_depthwise_floors_dots_are_each_taps_weight_gradient(suite):
    """The floor's weight-gradient pass computes, per plane and tap, g . x shifted by the tap."""
    from _floor import depthwise_pass_forms
    passes = depthwise_pass_forms(1, 2, (3, 4), (3, 3), np.random.default_rng(0))
    gw, arrays = passes["grad_w"]["dots, one thread"](), passes["arrays"]
    x, g = arrays["x"], arrays["g"]
    row = 6                                  # a padded row of 4 + 2
    for t, (a, b) in enumerate((a, b) for a in range(3) for b in range(3)):
        off = a * row + b
        np.testing.assert_allclose(gw[:, t], (g[:, :3 * row] * x[:, off:off + 3 * row]).sum(axis=1), rtol=1e-5)


def test_winograd_forms_have_the_tile_counts_of_their_passes(suite):
    """F(4x4, 3x3) at 12x12, 2 samples: 36 products over 2 * 3 * 3 tiles, (K, T) forward, (C, T) input
    gradient; the weight gradient's F(3x3, 4x4) gives (K, C)."""
    from _floor import conv_pass_forms  # on the path while the suite fixture lives
    passes = conv_pass_forms(2, 8, 16, (12, 12), (12, 12), (3, 3), (1, 1), (1, 1), np.random.default_rng(0))
    assert passes["forward"]["Winograd multiply"]().shape == (36, 16, 18)
    assert passes["grad_x"]["Winograd multiply"]().shape == (36, 8, 18)
    assert passes["grad_w"]["Winograd multiply"]().shape == (36, 16, 8)


def test_dilated_and_3d_winograd_forms_count_every_phase_and_depth(suite):
    """Dilation 2 at 12x12: four 6x6 phases of 2 x 2 tiles each; a 3x3x3 kernel at 6x8x8: 2 x 2 tiles at each of
    the 6 output depths, the 3 depth taps side by side in the products' inner dim."""
    from _floor import conv_pass_forms
    rng = np.random.default_rng(0)
    d2 = conv_pass_forms(2, 8, 16, (12, 12), (12, 12), (3, 3), (1, 1), (2, 2), rng)
    assert d2["forward"]["Winograd multiply"]().shape == (36, 16, 2 * 4 * 4)
    assert d2["grad_w"]["Winograd multiply"]().shape == (36, 16, 8)
    d3 = conv_pass_forms(2, 8, 16, (6, 8, 8), (6, 8, 8), (3, 3, 3), (1, 1, 1), (1, 1, 1), rng)
    assert d3["forward"]["Winograd multiply"]().shape == (36, 16, 2 * 6 * 4)
    assert d3["grad_x"]["Winograd multiply"]().shape == (36, 8, 2 * 6 * 4)
    assert d3["grad_w"]["Winograd multiply"]().shape == (36, 16, 3 * 8)


@pytest.mark.parametrize("case", [
    _case("conv", 4, 16, 16, (24, 24), 3, 1, 1, 1, 1),        # a training forward that keeps Winograd's input
    _case("conv", 2, 8, 16, (6, 8, 8), 3, 1, 1, 1, 1),
    _case("convT", 2, 16, 8, (6, 6), 4, 2, 1, 1, 1),
    _case("maxpool", 2, 8, 8, (12, 12), 3, 2, 1, 1, 1),
])
def test_the_autograd_step_agrees_with_the_functional_one(suite, case):
    """The suite times convkit through autograd (like PyTorch's step) or, with --functional, through F.conv
    and F.conv_vjp: both give the same output and gradients."""
    x, w, kw = suite.make(case, np.float64, np.random.default_rng(0))
    if case[1] == "conv" and len(case[5]) == 2:
        assert suite.F.conv_algorithms(x.shape, w.shape, **kw)["forward_autograd"] == "winograd"
    taped, functional = suite.convkit_step(case[1], x, w, kw), suite.convkit_step(case[1], x, w, kw, True)
    assert len(taped) == len(functional) == (2 if case[1] == "maxpool" else 3)
    for a, e in zip(taped, functional):
        np.testing.assert_allclose(a, e, rtol=1e-10, atol=1e-10)
