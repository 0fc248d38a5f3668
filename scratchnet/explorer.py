"""An interactive convolution explorer: which input pixels an output pixel reads, which output
pixels an input pixel stamps.

    from scratchnet.explorer import explore_conv
    explore_conv()                   # notebook 04: pick an output pixel, see the patch it reads
    explore_conv(transposed=True)    # notebook 05: pick an input pixel, see the window it stamps

The highlighted cells come from the package's own index code — `tap_slices` (the rows and
columns of the padded input that one kernel tap meets, as `unfold` and `fold` use them) and
`window` (the crop of `ConvTranspose2d`) — so the picture cannot disagree with the layers.
Sizes are square (H = W) to keep the controls few; every index works per axis.
"""
from __future__ import annotations

import io
from dataclasses import dataclass

import ipywidgets as widgets
import torch
from PIL import Image, ImageDraw

from .im2col import conv_output_size, tap_slices, window

CELL = 30                       # pixels per grid cell, a 1-pixel grid line included
GAP = 2 * CELL                  # pixels between the two grids
MARGIN = CELL // 2
BACKGROUND = (255, 255, 255)
GRID_LINE = (160, 160, 160)
PLAIN = (222, 232, 245)         # an input or output pixel
PADDING = (242, 242, 242)       # a zero of the padding (or an output position cropped away)
SELECTED = (214, 39, 40)        # the pixel chosen with the sliders
HIGHLIGHT = (255, 160, 30)      # the pixels it reads (convolution) or stamps (transposed)
HIGHLIGHT_PAD = (255, 214, 160)  # ... where they fall on padding / are cropped away


@dataclass(frozen=True)
class Geometry:
    """One axis of a (transposed) convolution; the explorer uses the same one for both axes."""

    size: int
    kernel: int
    stride: int = 1
    padding: int = 0
    dilation: int = 1
    output_padding: int = 0

    def conv_out(self) -> int:
        """Output size of the convolution: `conv_output_size` (notebook 04)."""
        return conv_output_size(self.size, self.kernel, self.stride, self.padding, self.dilation)

    def full(self) -> int:
        """Transposed convolution: the size before the padding is cropped,
        (H − 1)·S + D·(K − 1) + 1, as `ConvTranspose2d._full_size`."""
        return (self.size - 1) * self.stride + self.dilation * (self.kernel - 1) + 1

    def transposed_out(self) -> int:
        """Output size of the transposed convolution, as `ConvTranspose2d.output_size`."""
        return self.full() - 2 * self.padding + self.output_padding


def conv_patch(g: Geometry, pixel: tuple[int, int]) -> dict[tuple[int, int], tuple[int, int]]:
    """The input pixels that output pixel (i, j) of the convolution reads: {kernel tap (u, v):
    input position (r, c)}, positions in unpadded coordinates (r < 0 or r ≥ H is padding).

    From `tap_slices`: tap (u, v) meets padded rows `rows` (one per output row), so output row
    i reads padded row `range(H + 2P)[rows][i]`.
    """
    out = g.conv_out()
    i, j = pixel
    if not (0 <= i < out and 0 <= j < out):
        raise ValueError(f"conv_patch: output pixel {pixel} outside the {out}×{out} output")
    padded = range(g.size + 2 * g.padding)
    patch = {}
    for u in range(g.kernel):
        for v in range(g.kernel):
            rows, cols = tap_slices((u, v), (out, out), (g.stride,) * 2, (g.dilation,) * 2)
            patch[(u, v)] = (padded[rows][i] - g.padding, padded[cols][j] - g.padding)
    return patch


def transposed_stamp(g: Geometry, pixel: tuple[int, int],
                     ) -> dict[tuple[int, int], tuple[tuple[int, int], bool]]:
    """The output pixels that input pixel (i, j) of the transposed convolution stamps:
    {kernel tap (u, v): (output position (r, c), kept)}; `kept` is False where the padding crops
    the position away (then r or c lies outside the output).

    The stamp in the full (uncropped) output comes from `tap_slices`, as `fold` scatters it;
    whether a position survives the crop, and where it lands, from `window`, the crop of
    `ConvTranspose2d.forward`, applied to an image of position labels.
    """
    i, j = pixel
    if not (0 <= i < g.size and 0 <= j < g.size):
        raise ValueError(f"transposed_stamp: input pixel {pixel} outside the "
                         f"{g.size}×{g.size} input")
    full, out = g.full(), g.transposed_out()
    labels = torch.arange(1, full * full + 1, dtype=torch.float64).view(1, 1, full, full)
    cropped = window(labels, (g.padding, g.padding), (out, out))[0, 0]
    where = {int(v): (r, c) for (r, c), v in
             ((divmod(k, max(out, 1)), v) for k, v in enumerate(cropped.flatten().tolist())) if v}
    rows_of, cols_of = range(full), range(full)
    stamp = {}
    for u in range(g.kernel):
        for v in range(g.kernel):
            rows, cols = tap_slices((u, v), (g.size, g.size), (g.stride,) * 2, (g.dilation,) * 2)
            fr, fc = rows_of[rows][i], cols_of[cols][j]
            label = fr * full + fc + 1
            kept = label in where
            stamp[(u, v)] = (where[label] if kept else (fr - g.padding, fc - g.padding), kept)
    return stamp


def conv_formula(g: Geometry) -> str:
    """The output-size formula of the convolution with the numbers filled in."""
    top = g.size + 2 * g.padding - g.dilation * (g.kernel - 1) - 1
    return (f"H_out = ⌊(H + 2P − D·(K − 1) − 1) / S⌋ + 1 = ⌊({g.size} + 2·{g.padding} − "
            f"{g.dilation}·({g.kernel} − 1) − 1) / {g.stride}⌋ + 1 = ⌊{top} / {g.stride}⌋ + 1 = "
            f"{g.conv_out()}")


def transposed_formula(g: Geometry) -> str:
    """The output-size formula of the transposed convolution with the numbers filled in."""
    return (f"H_out = (H − 1)·S − 2P + D·(K − 1) + output_padding + 1 = ({g.size} − 1)·{g.stride}"
            f" − 2·{g.padding} + {g.dilation}·({g.kernel} − 1) + {g.output_padding} + 1 = "
            f"{g.transposed_out()}")


def cell_box(origin: tuple[int, int], r: int, c: int) -> tuple[int, int, int, int]:
    """Pixel box (x0, y0, x1, y1) of the inside of cell (r, c) of a grid whose cell (0, 0) has its
    top-left corner at `origin` (the grid line around the cell excluded)."""
    x, y = origin[0] + c * CELL, origin[1] + r * CELL
    return x + 1, y + 1, x + CELL - 1, y + CELL - 1


@dataclass
class Picture:
    """The explorer's frame: the PNG and where its two grids' cell (0, 0) is."""

    png: bytes
    left: tuple[int, int]
    right: tuple[int, int]
    size: tuple[int, int]


def _draw_grid(draw: ImageDraw.ImageDraw, origin: tuple[int, int], lo: int, hi: int,
               colour) -> None:
    for r in range(lo, hi):
        for c in range(lo, hi):
            draw.rectangle(cell_box(origin, r, c), fill=colour(r, c))
    x0, y0 = origin[0] + lo * CELL, origin[1] + lo * CELL
    for k in range(hi - lo + 1):
        draw.line([(x0 + k * CELL, y0), (x0 + k * CELL, y0 + (hi - lo) * CELL)], fill=GRID_LINE)
        draw.line([(x0, y0 + k * CELL), (x0 + (hi - lo) * CELL, y0 + k * CELL)], fill=GRID_LINE)


def render(g: Geometry, pixel: tuple[int, int], transposed: bool) -> Picture:
    """Draw input (left, with its padding ring) and output (right) as grids of cells.

    Convolution: `pixel` is an output pixel (SELECTED), the input cells it reads are HIGHLIGHT
    (HIGHLIGHT_PAD on the padding). Transposed: `pixel` is an input pixel, the output cells it
    stamps are HIGHLIGHT; stamps the padding crops away are HIGHLIGHT_PAD in a ring of cropped
    positions around the output.
    """
    p = g.padding
    if transposed:
        out = g.transposed_out()
        marked = transposed_stamp(g, pixel) if out > 0 else {}
        left_lo, left_hi = 0, g.size
        ring_hi = max(out, g.full() - p)           # stamps can fall beyond the output
        right_lo, right_hi = -p, ring_hi
        inside = {pos for pos, kept in marked.values() if kept}
        outside = {pos for pos, kept in marked.values() if not kept}
    else:
        out = g.conv_out()
        marked = conv_patch(g, pixel) if out > 0 else {}
        left_lo, left_hi = -p, g.size + p
        right_lo, right_hi = 0, max(out, 0)
        reads = set(marked.values())
    left_cells, right_cells = left_hi - left_lo, max(right_hi - right_lo, 1)
    width = 2 * MARGIN + (left_cells + right_cells) * CELL + GAP
    height = 2 * MARGIN + max(left_cells, right_cells) * CELL
    image = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    left = (MARGIN - left_lo * CELL, MARGIN - left_lo * CELL)
    right = (MARGIN + left_cells * CELL + GAP - right_lo * CELL, MARGIN - right_lo * CELL)

    def in_input(r: int, c: int) -> bool:
        return 0 <= r < g.size and 0 <= c < g.size

    def in_output(r: int, c: int) -> bool:
        return 0 <= r < out and 0 <= c < out

    if transposed:
        _draw_grid(draw, left, left_lo, left_hi,
                   lambda r, c: SELECTED if (r, c) == tuple(pixel) else PLAIN)
        _draw_grid(draw, right, right_lo, right_hi, lambda r, c: (
            HIGHLIGHT if (r, c) in inside else HIGHLIGHT_PAD if (r, c) in outside
            else PLAIN if in_output(r, c) else PADDING))
    else:
        _draw_grid(draw, left, left_lo, left_hi, lambda r, c: (
            (HIGHLIGHT if in_input(r, c) else HIGHLIGHT_PAD) if (r, c) in reads
            else PLAIN if in_input(r, c) else PADDING))
        if out > 0:
            _draw_grid(draw, right, 0, out,
                       lambda r, c: SELECTED if (r, c) == tuple(pixel) else PLAIN)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return Picture(buffer.getvalue(), left, right, (width, height))


class ConvExplorer(widgets.VBox):
    """Sliders for input size, kernel, stride, padding, dilation (and output_padding when
    `transposed`), and for the pixel to follow; `image` shows the grids, `formula` the output
    size, `label` the positions involved. `refresh` redraws after any change."""

    def __init__(self, transposed: bool = False, size: int = 5, kernel: int = 3,
                 stride: int = 2, padding: int = 1, dilation: int = 1,
                 output_padding: int = 0) -> None:
        self.transposed = transposed

        def slider(name: str, value: int, lo: int, hi: int) -> widgets.IntSlider:
            return widgets.IntSlider(value=value, min=lo, max=hi, description=name,
                                     continuous_update=False,
                                     style={"description_width": "8.5em"})

        self.size = slider("input size", size, 1, 9)
        self.kernel = slider("kernel", kernel, 1, 5)
        self.stride = slider("stride", stride, 1, 3)
        self.padding = slider("padding", padding, 0, 3)
        self.dilation = slider("dilation", dilation, 1, 3)
        self.output_padding = slider("output_padding", output_padding, 0, 2)
        what = "input" if transposed else "output"
        self.row = slider(f"{what} row", 0, 0, 0)
        self.col = slider(f"{what} column", 0, 0, 0)
        self.formula = widgets.HTML()
        self.caption = widgets.HTML(
            "left: the input (red: the chosen pixel) · right: the output, in a grey ring the "
            "positions the padding crops away (orange: the stamp)" if transposed else
            "left: the input in its ring of zero padding (grey) · right: the output (red: the "
            "chosen pixel; orange: the cells it reads)")
        self.label = widgets.HTML()
        self.image = widgets.Image(format="png")
        shape = [self.size, self.kernel, self.stride, self.padding, self.dilation]
        if transposed:
            shape.append(self.output_padding)
        controls = widgets.HBox([widgets.VBox(shape), widgets.VBox([self.row, self.col])])
        super().__init__([controls, self.formula, self.caption, self.image, self.label],
                         layout=widgets.Layout(align_items="flex-start"))  # image at its own size
        self._refreshing = False
        for control in (*shape, self.row, self.col):
            control.observe(self.refresh, names="value")
        self.refresh()

    def geometry(self) -> Geometry:
        return Geometry(self.size.value, self.kernel.value, self.stride.value, self.padding.value,
                        self.dilation.value,
                        self.output_padding.value if self.transposed else 0)

    def output_size(self) -> int:
        g = self.geometry()
        return g.transposed_out() if self.transposed else g.conv_out()

    def highlighted(self) -> dict[tuple[int, int], tuple[int, int]]:
        """{kernel tap: position} of the cells shown in HIGHLIGHT: the input pixels the chosen
        output pixel reads (in the input or on the padding), or the output pixels the chosen
        input pixel stamps that survive the crop. Empty when there is no output."""
        g, pixel = self.geometry(), (self.row.value, self.col.value)
        if self.output_size() < 1:
            return {}
        if self.transposed:
            return {tap: pos for tap, (pos, kept) in transposed_stamp(g, pixel).items() if kept}
        return conv_patch(g, pixel)

    def _limit(self) -> None:
        """Keep the pixel sliders inside the grid they index, and output_padding below
        max(stride, dilation) (torch's rule)."""
        if self.transposed:
            self.output_padding.max = max(self.stride.value, self.dilation.value) - 1
            span = self.size.value
        else:
            span = self.output_size()
        for s in (self.row, self.col):
            s.max = max(span - 1, 0)
            s.disabled = span < 1

    def refresh(self, change: dict | None = None) -> None:
        """Observer of every slider: clamp the dependent sliders, redraw image and labels."""
        if self._refreshing:
            return
        self._refreshing = True
        try:
            self._limit()
            g, pixel = self.geometry(), (self.row.value, self.col.value)
            out = self.output_size()
            formula = transposed_formula(g) if self.transposed else conv_formula(g)
            self.formula.value = f"<code>{formula}</code>"
            self.image.value = render(g, pixel, self.transposed).png
            self.label.value = self._describe(g, pixel, out)
        finally:
            self._refreshing = False

    def _describe(self, g: Geometry, pixel: tuple[int, int], out: int) -> str:
        if out < 1:
            return ("no output: the dilated kernel, D·(K − 1) + 1 = "
                    f"{g.dilation * (g.kernel - 1) + 1} pixels, does not fit"
                    if not self.transposed else "no output: the padding crops everything")
        i, j = pixel
        if self.transposed:
            stamp = transposed_stamp(g, pixel)
            kept = sum(k for _, k in stamp.values())
            return (f"input pixel ({i}, {j}) stamps its {g.kernel}×{g.kernel} kernel at output "
                    f"rows S·i + D·u − P = {g.stride}·{i} + {g.dilation}·u − {g.padding} "
                    f"(u = 0…{g.kernel - 1}); {kept} of {len(stamp)} taps land inside the "
                    f"{out}×{out} output, {len(stamp) - kept} are cropped (light orange)")
        patch = conv_patch(g, pixel)
        on_pad = sum(not (0 <= r < g.size and 0 <= c < g.size) for r, c in patch.values())
        return (f"output pixel ({i}, {j}) reads input rows S·i + D·u − P = {g.stride}·{i} + "
                f"{g.dilation}·u − {g.padding} (u = 0…{g.kernel - 1}); {on_pad} of {len(patch)} "
                "taps fall on the zero padding (light orange)")


def explore_conv(transposed: bool = False, **geometry: int) -> ConvExplorer:
    """The convolution explorer (transposed=True: the transposed convolution's); keyword
    arguments set the sliders' start values (size, kernel, stride, padding, dilation,
    output_padding). Display the returned widget in a notebook."""
    return ConvExplorer(transposed, **geometry)
