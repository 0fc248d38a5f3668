"""Side-by-side looks at denoising results: an interactive wipe comparison and a static grid.

    from scratchnet.widgets import compare, static_grid
    compare(noisy, denoised, clean)        # JupyterLab widget: pick an image, drag the wipe
    static_grid(noisy, denoised, clean)    # matplotlib Figure for non-interactive renders

Images are (N, 3, H, W) tensors, float in [0, 1] or uint8 in 0..255.

A displayed comparison also carries a `text/html` version of itself (ImageComparison.static_html):
the images as PNG data URIs and the controls in plain JavaScript, for pages without a kernel (the
static site of `make site`, nbconvert's HTML). Nothing in it is loaded from elsewhere.
"""
from __future__ import annotations

import base64
import html
import io
import json
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
STATIC_IMAGES = 32        # examples the offline (text/html) version carries at most
STATIC_BYTES = 2_000_000  # and about this many characters of images


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
    lo, hi = _divider_span(width, cut_column(width, position))
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


def _png_data_uri(img: Tensor) -> str:
    """img: (3, H, W) in [0, 1] -> data URI of its PNG, base64 with "/" and "+" percent-encoded
    (a data URI is percent-decoded before the base64 is read), so the page holds no "/a/b/"
    that looks like a path."""
    encoded = base64.b64encode(to_png(img)).decode("ascii")
    return "data:image/png;base64," + encoded.replace("+", "%2B").replace("/", "%2F")


def _divider_span(width: int, cut: int) -> tuple[int, int]:
    """Columns [lo, hi) of the divider for a wipe cut at column `cut` of a `width`-wide frame."""
    lo = min(max(cut - DIVIDER_WIDTH // 2, 0), width - 1)
    hi = max(min(cut + DIVIDER_WIDTH - DIVIDER_WIDTH // 2, width), lo + 1)
    return lo, hi


# The controls of ImageComparison.static_html, in plain (ES5) JavaScript; DATA is replaced by the
# images and labels. It finds its comparison as the element just before the script.
_WIPE_SCRIPT = """(function () {
  var script = document.currentScript, root = script && script.previousElementSibling;
  if (!root || !root.classList || !root.classList.contains("sn-wipe")) { return; }
  var data = DATA;
  function find(name) { return root.querySelector(".sn-wipe-" + name); }
  var index = find("index"), left = find("left"), right = find("right"),
      position = find("position"), cutBox = find("cut"), divider = find("divider"),
      leftImage = find("left-image"), rightImage = find("right-image"), label = find("label");
  function roundHalfEven(x) {  // Python's round(), which the widget uses
    var f = Math.floor(x), d = x - f;
    return d > 0.5 ? f + 1 : d < 0.5 ? f : (f % 2 === 0 ? f : f + 1);
  }
  function update() {
    var i = parseInt(index.value, 10), p = parseInt(position.value, 10), w = data.width;
    var k = i - data.first;
    var cut = roundHalfEven(p / 100 * w), half = Math.floor(data.divider / 2);
    var lo = Math.min(Math.max(cut - half, 0), w - 1);
    var hi = Math.max(Math.min(cut + data.divider - half, w), lo + 1);
    leftImage.src = data.images[left.value][k];
    leftImage.alt = left.value;
    rightImage.src = data.images[right.value][k];
    rightImage.alt = right.value;
    cutBox.style.width = cut + "px";
    divider.style.left = lo + "px";
    divider.style.width = (hi - lo) + "px";
    find("index-value").textContent = String(i + 1);
    find("position-value").textContent = String(p);
    label.textContent = data.labels[k];
  }
  [index, left, right, position].forEach(function (control) {
    control.addEventListener("input", update);
    control.addEventListener("change", update);
  });
  update();
})();"""


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
        return self._psnr_text(self.index.value)

    def _psnr_text(self, i: int) -> str:
        count = self.index.max + 1
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

    def _repr_mimebundle_(self, **kwargs) -> dict | None:
        """The widget view, plus static_html() as `text/html` for renderers without a kernel
        (a widget-aware front end such as JupyterLab shows the widget)."""
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is None:  # a closed widget has no view
            return None
        return {**bundle, "text/html": self.static_html()}

    def _static_images(self, i: int) -> tuple[int, dict[str, list[str]]]:
        """(first, {name: data URIs}) of the examples static_html carries: all of them, or a run
        of consecutive ones around example i within STATIC_IMAGES examples and STATIC_BYTES."""
        count = self.index.max + 1
        encoded = {i: {name: _png_data_uri(x[i]) for name, x in self.images.items()}}
        total = sum(map(len, encoded[i].values()))
        first, stop = i, i + 1
        while stop - first < STATIC_IMAGES and (first > 0 or stop < count):
            k = stop if stop < count and (stop - 1 - i <= i - first or first == 0) else first - 1
            uris = {name: _png_data_uri(x[k]) for name, x in self.images.items()}
            total += sum(map(len, uris.values()))
            if total > STATIC_BYTES:
                break
            encoded[k] = uris
            first, stop = min(first, k), max(stop, k + 1)
        return first, {name: [encoded[k][name] for k in range(first, stop)]
                       for name in self.images}

    def static_html(self) -> str:
        """The comparison as self-contained HTML: every image as a PNG data URI, and the
        controls (image, left, right, wipe %) in plain JavaScript, starting from the widget's
        current state. Works offline in any browser; without JavaScript it shows that frame.

        The images are shown at their own resolution, scaled by CSS with nearest-neighbour
        (pixelated) rendering, so the browser draws the same pixels as frame(); the payloads are
        percent-encoded base64 (no "/"), which a data URI allows. A long series is cut to the
        STATIC_IMAGES examples around the current one (and about STATIC_BYTES of PNG), so that
        a notebook does not swell.
        """
        names = list(self.images)
        count = self.index.max + 1
        height, width = self.images[names[0]].shape[-2:]
        scale = max(1, self.size // max(height, width))
        shown_w, shown_h = width * scale, height * scale
        i, left, right, position = (self.index.value, self.left.value, self.right.value,
                                    self.position.value)
        first, sources = self._static_images(i)
        last = first + len(sources[names[0]]) - 1
        cut = cut_column(shown_w, position)
        lo, hi = _divider_span(shown_w, cut)
        data = {"names": names, "first": first, "images": sources,
                "labels": [self._psnr_text(k) for k in range(first, last + 1)],
                "width": shown_w, "divider": DIVIDER_WIDTH}
        esc = html.escape
        pixelated = ("position:absolute;left:0;top:0;margin:0;padding:0;border:0;max-width:none;"
                     f"width:{shown_w}px;height:{shown_h}px;"
                     "image-rendering:crisp-edges;image-rendering:pixelated")

        def options(chosen: str) -> str:
            return "".join(f'<option value="{esc(n)}"{" selected" if n == chosen else ""}>'
                           f"{esc(n)}</option>" for n in names)

        carried = "" if last - first + 1 == count else f" (here {first + 1}–{last + 1})"
        index_control = (
            f'<label>image <input class="sn-wipe-index" type="range" min="{first}" max="{last}" '
            f'step="1" value="{i}"{" disabled" if first == last else ""}> <output '
            f'class="sn-wipe-index-value">{i + 1}</output>/{count}{carried}</label>')
        divider = "#{:02x}{:02x}{:02x}".format(*(round(c * 255) for c in DIVIDER_COLOR))
        markup = (
            '<div class="sn-wipe" style="display:inline-block;font-size:13px;line-height:1.6">'
            '<div style="display:flex;flex-wrap:wrap;align-items:center;gap:4px 16px">'
            f'{index_control}'
            f'<label>left <select class="sn-wipe-left">{options(left)}</select></label>'
            f'<label>right <select class="sn-wipe-right">{options(right)}</select></label></div>'
            '<div><label>wipe % <input class="sn-wipe-position" type="range" min="0" max="100" '
            f'step="1" value="{position}"> <output class="sn-wipe-position-value">{position}'
            '</output></label></div>'
            f'<div class="sn-wipe-frame" style="position:relative;overflow:hidden;width:{shown_w}px;'
            f'height:{shown_h}px;margin:4px 0">'
            f'<img class="sn-wipe-right-image" alt="{esc(right)}" width="{shown_w}" '
            f'height="{shown_h}" style="{pixelated}" src="{sources[right][i - first]}">'
            f'<div class="sn-wipe-cut" style="position:absolute;left:0;top:0;overflow:hidden;'
            f'width:{cut}px;height:{shown_h}px">'
            f'<img class="sn-wipe-left-image" alt="{esc(left)}" width="{shown_w}" '
            f'height="{shown_h}" style="{pixelated}" src="{sources[left][i - first]}"></div>'
            f'<div class="sn-wipe-divider" style="position:absolute;top:0;left:{lo}px;'
            f'width:{hi - lo}px;height:{shown_h}px;background:{divider}"></div></div>'
            f'<div class="sn-wipe-label">{esc(data["labels"][i - first])}</div></div>')
        payload = json.dumps(data, separators=(",", ":")).replace("<", "\\u003c")
        return markup + "<script>" + _WIPE_SCRIPT.replace("DATA", payload) + "</script>"


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
