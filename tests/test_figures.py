"""The course's figures: built from the package's index code, so their data are the layers'."""
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from matplotlib.figure import Figure
from strategies import conv_transpose2d_configs, tensors
from torch.testing import assert_close

import scratchnet as sn
from scratchnet import figures
from scratchnet.explorer import Geometry, transposed_stamp
from scratchnet.im2col import fold, unfold
from scratchnet.models import unet_denoiser
from scratchnet.upsampling import PhasePlan


def titled(fig: Figure) -> bool:
    """Every figure says what it shows: a title on the figure or on each of its axes."""
    return bool(fig._suptitle and fig._suptitle.get_text()) or all(
        ax.get_title() for ax in fig.axes if ax.get_label() != "<colorbar>")


@pytest.mark.parametrize("size, kernel, stride, padding", [(4, 2, 1, 0), (5, 3, 2, 1), (6, 3, 2, 2)])
def test_overlap_counts_crop_to_fold_of_unfold(size, kernel, stride, padding):
    counts = figures.overlap_counts(size, kernel, stride, padding)
    ones = torch.ones(1, 1, size, size, dtype=torch.float64)
    k, s, p, d = (kernel,) * 2, (stride,) * 2, (padding,) * 2, (1, 1)
    expected = fold(unfold(ones, k, s, p, d), (size, size), k, s, p, d)[0, 0]
    assert torch.equal(counts[padding:padding + size, padding:padding + size], expected)
    assert counts.shape == (size + 2 * padding,) * 2


def test_conv_matrix_is_the_convolution_and_its_transpose():
    a = figures.conv_matrix(5, 3, 2, 1)
    weight = torch.arange(1.0, 10, dtype=torch.float64).view(1, 1, 3, 3)
    x = torch.randn(1, 1, 5, 5, dtype=torch.float64)
    z = torch.randn(1, 1, 3, 3, dtype=torch.float64)
    assert torch.allclose(a @ x.flatten(), F.conv2d(x, weight, stride=2, padding=1).flatten())
    assert torch.allclose(a.t() @ z.flatten(),
                          F.conv_transpose2d(z, weight, stride=2, padding=1).flatten())


def test_unet_diagram_has_a_box_per_layer_and_an_arrow_per_skip():
    model = unet_denoiser()
    fig = figures.unet_diagram(model)
    boxes = [t for t in fig.axes[0].texts if t.get_bbox_patch() is not None]
    convs = [m for m in model.modules() if isinstance(m, (sn.Conv2d, sn.Upsampling))]
    concats = [m for m in model.modules() if isinstance(m, sn.Concat)]
    assert len(boxes) == len(convs) + len(concats)
    assert len(fig.axes[0].patches) == len(concats)
    assert titled(fig)


def test_every_figure_is_built_and_titled():
    torch.manual_seed(0)
    mlp = sn.Sequential(sn.Linear(6, 16), sn.LeakyReLU(0.1), sn.Linear(16, 3))
    built = [
        figures.chain_rule_figure(mlp, torch.randn(7, 6)),
        figures.overlap_figure([(4, 2, 1, 0), (5, 3, 2, 1)]),
        figures.stamp_figure(Geometry(4, 3, 2, 1, 1, 1), (1, 2)),
        figures.sparsity_figure(5, 3, 2, 1),
        figures.block_sum_figure(torch.arange(24.0).view(4, 6), (2, 3)),
        figures.phase_taps_figure([PhasePlan(8, 2, 3, 1), PhasePlan(8, 3, 5, 2)], [3, 5]),
        figures.layer_timings_figure([("conv", 1e-3, 2e-3, 3e-3, 4e-3)], "per layer"),
        figures.zero_insertion_figure(Geometry(4, 3, 2, 1, 1, 1), (3, 4)),
    ]
    for fig in built:
        assert isinstance(fig, Figure) and titled(fig)
    chain = built[0].axes[0]
    texts = [t.get_text() for t in chain.texts]
    assert "(0) Linear" in texts and "(1) LeakyReLU" in texts and "(2) Linear" in texts
    assert "y\n(7, 3)" in texts and "x\n(7, 6)" in texts
    sums = [t.get_text() for t in built[4].axes[1].texts]
    assert sums == ["24", "42", "96", "114"]


@given(cfg=conv_transpose2d_configs(), data=st.data())
def test_zero_insertion_and_flipped_kernel_are_the_transposed_convolution(cfg, data):
    """Dumoulin & Visin: ConvTranspose2d = S − 1 zeros inserted between the input pixels,
    D·(K − 1) − P zeros around (+ output_padding), then a stride-1 convolution with the flipped,
    channel-swapped kernel — the construction `zero_insertion_figure` draws."""
    c_in, c_out, kernel = cfg.args
    kw = cfg.kwargs
    up = sn.ConvTranspose2d(c_in, c_out, kernel, dtype=torch.float64, **kw)
    x = data.draw(tensors(cfg.input_shape), label="x")
    z_hat = figures.zero_insertion(x, kernel, kw["stride"], kw["padding"], kw["output_padding"],
                                   kw["dilation"])
    conv = sn.Conv2d(c_in, c_out, kernel, dilation=kw["dilation"], groups=kw["groups"],
                     bias=kw["bias"], dtype=torch.float64)
    conv.weight.copy_(figures.flipped_kernel(up.weight, kw["groups"]))
    if kw["bias"]:
        conv.bias.copy_(up.bias)
    assert_close(conv(z_hat), up(x), rtol=1e-10, atol=1e-10)


def test_flipped_kernel_swaps_channels_and_flips_taps():
    weight = torch.randn(4, 3, 2, 3, dtype=torch.float64)            # (C_in, C_out, K_h, K_w)
    flipped = figures.flipped_kernel(weight)
    assert flipped.shape == (3, 4, 2, 3)
    assert torch.equal(flipped[2, 1, 0, 2], weight[1, 2, 1, 0])
    grouped = figures.flipped_kernel(weight, groups=2)                # (C_out = 6, C_in/2 = 2, …)
    assert grouped.shape == (6, 2, 2, 3)
    assert torch.equal(grouped[4, 1, 0, 0], weight[3, 1, 1, 2])      # group 1: o = 3 + 1, c = 2 + 1


@pytest.mark.parametrize("geometry", [Geometry(4, 3, 2, 1, 1, 1), Geometry(3, 3, 3, 0),
                                      Geometry(5, 2, 2, 1), Geometry(3, 3, 1, 1, 2, 1)])
def test_zero_insertion_window_reads_the_stamps_that_reach_the_pixel(geometry):
    """The input pixels under the window of output pixel (r, s), each times its flipped tap, are
    the stamps of the scatter view that land on (r, s): w[K−1−u, K−1−v] there is tap (p, q) of
    input pixel (i, j)'s stamp."""
    out, k = geometry.transposed_out(), geometry.kernel
    stamps = {(i, j): transposed_stamp(geometry, (i, j))
              for i in range(geometry.size) for j in range(geometry.size)}
    for pixel in [(r, s) for r in range(out) for s in range(out)]:
        reads = figures.zero_insertion_window(geometry, pixel)
        assert len(reads) == k * k
        window_terms = {(source, (k - 1 - u, k - 1 - v))
                        for (u, v), (_, source) in reads.items() if source is not None}
        stamp_terms = {(source, tap) for source, stamp in stamps.items()
                       for tap, (where, kept) in stamp.items() if kept and where == pixel}
        assert window_terms == stamp_terms


def test_zero_insertion_figure_draws_the_window_and_the_flipped_kernel():
    g = Geometry(size=4, kernel=3, stride=2, padding=1, output_padding=1)
    fig = figures.zero_insertion_figure(g, (3, 4))
    assert isinstance(fig, Figure) and titled(fig)
    canvas, kernel = fig.axes
    assert len(fig.axes) == 2
    side = (g.size - 1) * g.stride + 1 + 2 * (g.kernel - 1 - g.padding) + g.output_padding
    assert len(canvas.texts) == side * side and len(kernel.texts) == g.kernel ** 2
    assert [t.get_text() for t in kernel.texts][:3] == ["w₂₂", "w₂₁", "w₂₀"]
    assert "y₃₄ = x₁₂·w₂₁ + x₂₂·w₀₁" in fig._suptitle.get_text()
    with pytest.raises(ValueError, match="outside the 8×8 output"):
        figures.zero_insertion_figure(g, (8, 0))
