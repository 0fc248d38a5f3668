"""Side-by-side looks at denoising results: an interactive wipe comparison and a static grid.

    from scratchnet.widgets import compare, static_grid
    compare(noisy, denoised, clean)        # JupyterLab widget: pick an image, drag the wipe
    static_grid(noisy, denoised, clean)    # matplotlib Figure for non-interactive renders

Images are (N, 3, H, W) tensors, float in [0, 1] or uint8 in 0..255.
"""
from __future__ import annotations

import io
from collections.abc import Sequence

import ipywidgets as widgets
import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from PIL import Image
from torch import Tensor

from .metrics import psnr
from .validation import check_images, shape_str

DIVIDER_COLOR = (1.0, 0.85, 0.0)
DIVIDER_WIDTH = 2


def as_unit_images(x: Tensor, name: str = "images") -> Tensor:
    """(N, 3, H, W) or (3, H, W), float in [0, 1] or uint8 -> (N, 3, H, W) float32 in [0, 1].

    Floats are clamped to [0, 1] (a denoiser may overshoot slightly); floats far above 1 are
    rejected as probably 0..255 values.
    """
    if isinstance(x, Tensor) and x.dim() == 3:
        x = x[None]
    check_images(x, name, finite=True)
    x = x.detach().cpu()
    if x.dtype == torch.uint8:
        return x.to(torch.float32) / 255
    x = x.to(torch.float32)
    if x.max() > 1.5:
        raise ValueError(f"{name}: float images must lie in [0, 1], got values up to "
                         f"{x.max().item():.4g}; divide 0..255 images by 255 or pass uint8")
    return x.clamp(0, 1)


def upscale(img: Tensor, size: int) -> Tensor:
    """Nearest-neighbour upscaling by the largest integer factor that keeps the longer side
    <= size (at least 1). img: (3, H, W) -> (3, H·s, W·s)."""
    s = max(1, size // max(img.shape[-2:]))
    return img.repeat_interleave(s, dim=-2).repeat_interleave(s, dim=-1)


def cut_column(width: int, position: float) -> int:
    """Index of the first column shown from the right image for a wipe at `position` % of width."""
    if not 0 <= position <= 100:
        raise ValueError(f"wipe: position must be in [0, 100] (percent of the width), "
                         f"got {position}")
    return round(position / 100 * width)


def wipe(left: Tensor, right: Tensor, position: float) -> Tensor:
    """Left image up to `position` percent of the width, right image beyond it.

    left, right: (3, H, W) -> (3, H, W); columns < cut_column(W, position) come from left.
    """
    if left.shape != right.shape or left.dim() != 3:
        raise ValueError(f"wipe: left and right must be (3, H, W) tensors of one shape, got "
                         f"{shape_str(left.shape)} and {shape_str(right.shape)}")
    cut = cut_column(left.shape[-1], position)
    out = right.clone()
    out[..., :cut] = left[..., :cut]
    return out


def draw_divider(img: Tensor, position: float) -> Tensor:
    """Copy of img: (3, H, W) with a vertical DIVIDER_COLOR line, DIVIDER_WIDTH columns wide,
    centred on the wipe boundary (clipped to the image)."""
    width = img.shape[-1]
    cut = cut_column(width, position)
    lo = min(max(cut - DIVIDER_WIDTH // 2, 0), width - 1)
    hi = max(min(cut + DIVIDER_WIDTH - DIVIDER_WIDTH // 2, width), lo + 1)
    out = img.clone()
    out[:, :, lo:hi] = torch.tensor(DIVIDER_COLOR, dtype=img.dtype)[:, None, None]
    return out


def render(left: Tensor, right: Tensor, position: float, size: int) -> Tensor:
    """The displayed frame: both images upscaled, wiped at `position` %, divider drawn.
    left, right: (3, H, W) in [0, 1] -> (3, H·s, W·s)."""
    return draw_divider(wipe(upscale(left, size), upscale(right, size), position), position)


def to_png(img: Tensor) -> bytes:
    """PNG bytes of img: (3, H, W) float in [0, 1]."""
    pixels = (img * 255).round().to(torch.uint8).permute(1, 2, 0).contiguous().numpy()
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _check_titles(titles: Sequence[str] | None, count: int) -> list[str]:
    names = ["noisy", "denoised", "clean"][:count] if titles is None else list(titles)
    if len(names) != count or len(set(names)) != count:
        raise ValueError(f"compare: titles must be {count} distinct names (noisy, denoised"
                         f"{', clean' if count == 3 else ''}), got {names}")
    return names


class ImageComparison(widgets.VBox):
    """Wipe comparison of two of the images (noisy / denoised / clean) of one example.

    Controls: `index` (which example), `left` / `right` (which images), `position` (wipe, % of
    the width); output: `image` (PNG of the current frame) and `label` (PSNR against clean).
    """

    def __init__(self, noisy: Tensor, denoised: Tensor, clean: Tensor | None = None,
                 titles: Sequence[str] | None = None, size: int = 256):
        given = [noisy, denoised] + ([] if clean is None else [clean])
        names = _check_titles(titles, len(given))
        self.images = {name: as_unit_images(x, f"compare: {name}") for name, x in zip(names, given)}
        shapes = {name: tuple(x.shape) for name, x in self.images.items()}
        if len(set(shapes.values())) != 1:
            raise ValueError("compare: all images must have one shape, got "
                             + ", ".join(f"{k} {shape_str(s)}" for k, s in shapes.items()))
        if not isinstance(size, int) or size < 1:
            raise ValueError(f"compare: size must be a positive int, got {size!r}")
        self.size = size
        self.reference = names[2] if clean is not None else None
        count = self.images[names[0]].shape[0]
        self.mean_psnr = ({} if self.reference is None else
                          {name: psnr(self.images[name], self.images[self.reference]).item()
                           for name in names[:2]})

        self.index = widgets.IntSlider(value=0, min=0, max=count - 1, description="image",
                                       disabled=count == 1)
        narrow = {"layout": widgets.Layout(width="auto")}
        self.left = widgets.Dropdown(options=names, value=names[0], description="left", **narrow)
        self.right = widgets.Dropdown(options=names, value=names[1], description="right", **narrow)
        self.position = widgets.IntSlider(value=50, min=0, max=100, description="wipe %")
        self.image = widgets.Image(format="png")
        self.label = widgets.Label()
        super().__init__([widgets.HBox([self.index, self.left, self.right]), self.position,
                          self.image, self.label],
                         layout=widgets.Layout(align_items="flex-start"))  # image at its own size
        for control in (self.index, self.left, self.right, self.position):
            control.observe(self.refresh, names="value")
        self.refresh()

    def frame(self) -> Tensor:
        """The frame for the current controls: (3, H·s, W·s) in [0, 1]."""
        i = self.index.value
        return render(self.images[self.left.value][i], self.images[self.right.value][i],
                      self.position.value, self.size)

    def psnr_text(self) -> str:
        """PSNR of the current example's noisy and denoised images against clean, and the mean."""
        i, count = self.index.value, self.index.max + 1
        if self.reference is None:
            return f"image {i + 1}/{count} · no clean image given, so no PSNR"
        clean = self.images[self.reference][i]
        now = ", ".join(f"{name} {psnr(self.images[name][i], clean).item():.2f} dB"
                        for name in self.mean_psnr)
        mean = ", ".join(f"{name} {value:.2f} dB" for name, value in self.mean_psnr.items())
        return (f"image {i + 1}/{count} · PSNR vs {self.reference}: {now} "
                f"(mean over {count}: {mean})")

    def refresh(self, change: dict | None = None) -> None:
        """Observer of every control: redraw the image and the PSNR label."""
        self.image.value = to_png(self.frame())
        self.label.value = self.psnr_text()


def compare(noisy: Tensor, denoised: Tensor, clean: Tensor | None = None,
            titles: Sequence[str] | None = None, size: int = 256) -> ImageComparison:
    """Interactive wipe comparison; noisy, denoised, clean: (N, 3, H, W) float in [0, 1] or uint8.

    titles name the images (default noisy, denoised, clean); small images are upscaled
    (nearest) towards `size` pixels. Display the returned widget in a notebook.
    """
    return ImageComparison(noisy, denoised, clean, titles, size)


def static_grid(noisy: Tensor, denoised: Tensor, clean: Tensor, n: int = 6) -> Figure:
    """Figure with rows noisy / denoised / clean for the first min(n, N) images, PSNR vs clean
    in the titles. noisy, denoised, clean: (N, 3, H, W) float in [0, 1] or uint8."""
    rows = {name: as_unit_images(x, f"static_grid: {name}")
            for name, x in (("noisy", noisy), ("denoised", denoised), ("clean", clean))}
    shapes = {tuple(x.shape) for x in rows.values()}
    if len(shapes) != 1:
        raise ValueError("static_grid: all images must have one shape, got "
                         + ", ".join(f"{k} {shape_str(x.shape)}" for k, x in rows.items()))
    if n < 1:
        raise ValueError(f"static_grid: n must be >= 1, got {n}")
    cols = min(n, rows["clean"].shape[0])
    fig, axes = plt.subplots(3, cols, figsize=(1.8 * cols, 6.0), squeeze=False,
                             layout="constrained")
    plt.close(fig)  # shown once, as the return value, not again by the inline backend
    for r, (name, images) in enumerate(rows.items()):
        for c in range(cols):
            ax = axes[r, c]
            ax.imshow(images[c].permute(1, 2, 0).numpy(), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if name != "clean":
                ax.set_title(f"{psnr(images[c], rows['clean'][c]).item():.2f} dB", fontsize=9)
        axes[r, 0].set_ylabel(name)
    return fig
