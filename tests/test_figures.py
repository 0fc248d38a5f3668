"""The course's figures: built from the package's index code, so their data are the layers'."""
import pytest
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

import scratchnet as sn
from scratchnet import figures
from scratchnet.explorer import Geometry
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
    ]
    for fig in built:
        assert isinstance(fig, Figure) and titled(fig)
    chain = built[0].axes[0]
    texts = [t.get_text() for t in chain.texts]
    assert "(0) Linear" in texts and "(1) LeakyReLU" in texts and "(2) Linear" in texts
    assert "y\n(7, 3)" in texts and "x\n(7, 6)" in texts
    sums = [t.get_text() for t in built[4].axes[1].texts]
    assert sums == ["24", "42", "96", "114"]
