"""The convolution explorer: its highlighted cells against brute-force loops over the definitions
of convolution and transposed convolution, and its widget driven through its sliders."""
import io
import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from scratchnet.explorer import (
    HIGHLIGHT,
    HIGHLIGHT_PAD,
    PADDING,
    PLAIN,
    SELECTED,
    ConvExplorer,
    Geometry,
    cell_box,
    conv_formula,
    conv_patch,
    explore_conv,
    render,
    transposed_formula,
    transposed_stamp,
)

CONV_GEOMETRIES = [Geometry(h, k, s, p, d)
                   for h, k, s, p, d in itertools.product((1, 4, 7), (1, 2, 3), (1, 2, 3),
                                                          (0, 1, 2), (1, 2))
                   if (h + 2 * p - d * (k - 1) - 1) >= 0]
TRANSPOSED_GEOMETRIES = [Geometry(h, k, s, p, d, op)
                         for h, k, s, p, d, op in itertools.product((1, 3, 4), (1, 2, 3), (1, 2, 3),
                                                                    (0, 1, 2), (1, 2), (0, 1, 2))
                         if op < max(s, d) and (h - 1) * s - 2 * p + d * (k - 1) + op + 1 >= 1]


def brute_force_patch(g: Geometry, i: int, j: int) -> dict:
    """y[i, j] = Σ_{u,v} W[u, v]·x̃[S·i + D·u, S·j + D·v], x̃ = x padded by P: the definition, as
    unpadded positions."""
    return {(u, v): (g.stride * i + g.dilation * u - g.padding,
                     g.stride * j + g.dilation * v - g.padding)
            for u in range(g.kernel) for v in range(g.kernel)}


def brute_force_stamp(g: Geometry, i: int, j: int) -> dict:
    """y[S·i + D·u − P, S·j + D·v − P] += x[i, j]·W[u, v], kept when inside the output: a loop
    over every output pixel and tap, as the definition reads."""
    out = g.transposed_out()
    kept = {}
    for r in range(out):
        for c in range(out):
            for u in range(g.kernel):
                for v in range(g.kernel):
                    if (g.stride * i + g.dilation * u - g.padding,
                            g.stride * j + g.dilation * v - g.padding) == (r, c):
                        kept[(u, v)] = (r, c)
    return kept


@pytest.mark.parametrize("g", CONV_GEOMETRIES, ids=str)
def test_conv_patch_is_the_definition(g):
    out = g.conv_out()
    assert out == F.conv2d(torch.zeros(1, 1, g.size, g.size), torch.zeros(1, 1, g.kernel, g.kernel),
                           stride=g.stride, padding=g.padding, dilation=g.dilation).shape[-1]
    for i, j in itertools.product(range(out), repeat=2):
        assert conv_patch(g, (i, j)) == brute_force_patch(g, i, j)


@pytest.mark.parametrize("g", TRANSPOSED_GEOMETRIES, ids=str)
def test_transposed_stamp_is_the_definition(g):
    out = g.transposed_out()
    taps = torch.arange(1.0, g.kernel ** 2 + 1, dtype=torch.float64).view(1, 1, g.kernel, g.kernel)
    for i, j in itertools.product(range(g.size), repeat=2):
        stamp = transposed_stamp(g, (i, j))
        kept = {tap: pos for tap, (pos, inside) in stamp.items() if inside}
        assert kept == brute_force_stamp(g, i, j)
        for tap, (pos, inside) in stamp.items():       # a cropped tap lies outside the output
            assert inside == all(0 <= p < out for p in pos)
            assert pos == (g.stride * i + g.dilation * tap[0] - g.padding,
                           g.stride * j + g.dilation * tap[1] - g.padding)
        # and torch agrees: a one-hot input stamps the tap numbers exactly there
        x = torch.zeros(1, 1, g.size, g.size, dtype=torch.float64)
        x[0, 0, i, j] = 1
        y = F.conv_transpose2d(x, taps, stride=g.stride, padding=g.padding,
                               output_padding=g.output_padding, dilation=g.dilation)[0, 0]
        assert y.shape == (out, out)
        expected = torch.zeros_like(y)
        for (u, v), (r, c) in kept.items():
            expected[r, c] = u * g.kernel + v + 1
        assert torch.equal(y, expected)


def test_index_errors_and_formulas():
    with pytest.raises(ValueError, match="outside the 3×3 output"):
        conv_patch(Geometry(5, 3, 2, 1), (3, 0))
    with pytest.raises(ValueError, match="outside the 4×4 input"):
        transposed_stamp(Geometry(4, 3, 2, 1), (0, 4))
    assert conv_formula(Geometry(7, 3, 2, 1)).endswith("= ⌊6 / 2⌋ + 1 = 4")
    assert transposed_formula(Geometry(4, 3, 2, 1, 1, 1)).endswith("+ 1 + 1 = 8")


def shown(widget: ConvExplorer) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(widget.image.value)).convert("RGB"))


def colour_at(img: np.ndarray, origin, r: int, c: int) -> tuple[int, ...]:
    x0, y0, x1, y1 = cell_box(origin, r, c)
    block = img[y0:y1, x0:x1].reshape(-1, 3)
    assert (block == block[0]).all(), "a cell is one colour"
    return tuple(int(v) for v in block[0])


def test_conv_explorer_follows_its_sliders():
    widget = explore_conv(size=5, kernel=3, stride=2, padding=1)
    assert "= 3" in widget.formula.value and widget.row.max == 2
    widget.row.value, widget.col.value = 1, 2
    g = widget.geometry()
    assert widget.highlighted() == brute_force_patch(g, 1, 2)
    picture = render(g, (1, 2), transposed=False)
    img = shown(widget)
    reads = set(widget.highlighted().values())
    for r, c in itertools.product(range(-1, 6), repeat=2):
        inside = 0 <= r < 5 and 0 <= c < 5
        want = ((HIGHLIGHT if inside else HIGHLIGHT_PAD) if (r, c) in reads
                else PLAIN if inside else PADDING)
        assert colour_at(img, picture.left, r, c) == want, (r, c)
    for r, c in itertools.product(range(3), repeat=2):
        assert colour_at(img, picture.right, r, c) == (SELECTED if (r, c) == (1, 2) else PLAIN)
    # a larger kernel shrinks the output: the pixel sliders follow, the formula too
    widget.kernel.value = 5
    assert widget.output_size() == 2 and widget.row.max == 1 and widget.col.value == 1
    assert "= 2</code>" in widget.formula.value
    assert widget.highlighted() == brute_force_patch(widget.geometry(), 1, 1)
    widget.dilation.value = 3                      # 13-pixel kernel on a 7-pixel padded input
    assert widget.output_size() < 1 and widget.highlighted() == {} and widget.row.disabled
    assert "no output" in widget.label.value


def test_transposed_explorer_follows_its_sliders():
    widget = explore_conv(transposed=True, size=4, kernel=3, stride=2, padding=1,
                          output_padding=1)
    assert widget.output_size() == 8 and widget.row.max == 3
    assert widget.output_padding.max == 1
    widget.row.value, widget.col.value = 0, 3
    g = widget.geometry()
    assert widget.highlighted() == brute_force_stamp(g, 0, 3)
    picture = render(g, (0, 3), transposed=True)
    img = shown(widget)
    stamp = transposed_stamp(g, (0, 3))
    cropped = {pos for pos, kept in stamp.values() if not kept}
    for r, c in itertools.product(range(-1, 8), repeat=2):
        inside = 0 <= r < 8 and 0 <= c < 8
        want = (HIGHLIGHT if (r, c) in set(widget.highlighted().values())
                else HIGHLIGHT_PAD if (r, c) in cropped else PLAIN if inside else PADDING)
        assert colour_at(img, picture.right, r, c) == want, (r, c)
    assert colour_at(img, picture.left, 0, 3) == SELECTED
    assert "3 are cropped" in widget.label.value
    # stride 1: output_padding must drop to 0 (it must stay below max(stride, dilation))
    widget.stride.value = 1
    assert widget.output_padding.value == 0 and widget.output_padding.max == 0
    assert widget.output_size() == 4
    assert widget.highlighted() == brute_force_stamp(widget.geometry(), 0, 3)
