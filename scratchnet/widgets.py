"""Side-by-side looks at denoising results: an interactive wipe comparison and a static grid.

    from scratchnet.widgets import compare, static_grid
    compare(noisy, denoised, clean)        # JupyterLab widget: pick an image, drag the wipe
    compare(noisy, denoised, clean, size=768, zoom=4, centre=(40, 60))  # a photograph, zoomed in
    static_grid(noisy, denoised, clean)    # matplotlib Figure for non-interactive renders

Images are (N, 3, H, W) tensors, float in [0, 1] or uint8 in 0..255: 32×32 crops or whole
photographs (a few megapixels). The comparison shows them in a frame `size` pixels on its longer
side: at zoom 1 the whole image (small images upscaled by a whole factor, big ones scaled down to
fit), at zoom 2, 4, 8, 16 a crop around the centre that the `x %` / `y %` sliders choose. Every
frame pixel is a source pixel (nearest neighbour), so at high zoom each image pixel is a visible
square; a frame is drawn from the visible crop only (view, crop, magnify, render), so its cost
follows the frame's size, not the image's.

A displayed comparison also carries a `text/html` version of itself (ImageComparison.static_html):
the images as data URIs and the controls in plain JavaScript, which draws the frame into a canvas
with the same pixel arithmetic, for pages without a kernel (the static site of `make site`,
nbconvert's HTML). Nothing in it is loaded from elsewhere.
"""
from __future__ import annotations

import base64
import html
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from PIL import Image
from torch import Tensor

from .metrics import psnr
from .validation import check_images, shape_str

DIVIDER_COLOR = (1.0, 0.85, 0.0)
DIVIDER_WIDTH = 2
ZOOMS = (1, 2, 4, 8, 16)  # the zoom slider's steps; 1 shows the whole image
STATIC_IMAGES = 32        # examples the offline (text/html) version carries at most
STATIC_BYTES = 3_000_000  # and about this many characters of images (data URIs): enough for
                          # one 1024×768 photograph's triple as JPEG
STATIC_JPEG_QUALITY = 95  # images whose example does not fit STATIC_BYTES as PNG go as JPEG


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


@dataclass(frozen=True)
class View:
    """Which source pixels a frame shows, and how big.

    The frame is (height, width) display pixels; it shows the crop of rows top..top+rows-1 and
    columns left..left+cols-1 of the image, each source pixel num/den display pixels wide (zoom
    included). Frame column c shows crop column min(((2c + 1)·den) // (2·num), cols - 1): the
    source pixel under the display pixel's centre (nearest neighbour), in integer arithmetic
    that static_html's JavaScript repeats exactly. Rows likewise.
    """
    top: int
    left: int
    rows: int
    cols: int
    height: int
    width: int
    num: int
    den: int

    @property
    def scale(self) -> float:
        """Display pixels per source pixel."""
        return self.num / self.den

    def source_rows(self) -> Tensor:
        """(height,) int64: the crop row each frame row shows."""
        return _source_index(self.height, self.rows, self.num, self.den)

    def source_columns(self) -> Tensor:
        """(width,) int64: the crop column each frame column shows."""
        return _source_index(self.width, self.cols, self.num, self.den)


def _source_index(frame: int, count: int, num: int, den: int) -> Tensor:
    pixel = torch.arange(frame, dtype=torch.int64)
    return torch.clamp(((2 * pixel + 1) * den) // (2 * num), max=count - 1)


def fit_scale(height: int, width: int, size: int) -> tuple[int, int]:
    """(num, den): display pixels per source pixel at zoom 1, num/den. An image whose longer
    side is at most `size` is upscaled by the largest whole factor that keeps it within `size`
    (as `upscale`, at least 1); a bigger one is scaled down to `size` on its longer side."""
    longer = max(height, width)
    return (max(1, size // longer), 1) if longer <= size else (size, longer)


def _check_view_args(size: int, zoom: int, centre: tuple[float, float], where: str = "view",
                     whole: bool = False) -> None:
    """ValueError, starting with `where`, unless size is a positive int, zoom one of ZOOMS and
    centre two percents in [0, 100] (ints, not bools, when `whole`: slider values)."""
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise ValueError(f"{where}: size must be a positive int, got {size!r}")
    if zoom not in ZOOMS:
        raise ValueError(f"{where}: zoom must be one of {list(ZOOMS)}, got {zoom!r}")
    kinds = int if whole else (int, float)
    if len(centre) != 2 or not all(isinstance(p, kinds) and not (whole and isinstance(p, bool))
                                   and 0 <= p <= 100 for p in centre):
        what = "ints" if whole else "each"
        raise ValueError(f"{where}: centre must be (x %, y %), {what} in [0, 100], got "
                         f"{centre!r}")


def view(height: int, width: int, size: int, zoom: int = 1,
         centre: tuple[float, float] = (50, 50)) -> View:
    """The View of an (H, W) = (height, width) image in a frame `size` pixels on its longer side.

    The frame's shape is the zoom-1 one, (H·num // den, W·num // den) with (num, den) =
    fit_scale(H, W, size), at every zoom. At zoom z each source pixel is z·num/den display
    pixels; the crop is centred on centre = (x %, y %) of the image's width and height (0 the
    left/top edge, 100 the right/bottom), rounded to whole pixels and moved inside the image
    where it would stick out. At zoom 1 it is the whole image.
    """
    _check_view_args(size, zoom, centre)
    num, den = fit_scale(height, width, size)
    frame_h, frame_w = max(1, height * num // den), max(1, width * num // den)
    num *= zoom

    def axis(length: int, frame: int, percent: float) -> tuple[int, int]:
        count = min(((2 * frame - 1) * den) // (2 * num) + 1, length)
        start = math.floor((2 * percent * length - 100 * count + 100) / 200)
        return min(max(start, 0), length - count), count

    top, rows = axis(height, frame_h, centre[1])
    left, cols = axis(width, frame_w, centre[0])
    return View(top, left, rows, cols, frame_h, frame_w, num, den)


def crop(img: Tensor, v: View) -> Tensor:
    """The source pixels v shows: img (3, H, W) -> (3, v.rows, v.cols), a view, no copy."""
    return img[..., v.top: v.top + v.rows, v.left: v.left + v.cols]


def magnify(patch: Tensor, v: View) -> Tensor:
    """The crop drawn at v's scale, nearest neighbour: (3, v.rows, v.cols) -> (3, v.height,
    v.width), a new tensor of patch's dtype."""
    return torch.from_numpy(_gather(patch, v.source_rows(), v.source_columns()))


def _gather(patch: Tensor, rows: Tensor, cols: Tensor) -> np.ndarray:
    """patch[:, rows][:, :, cols] as a new array: two numpy takes (much faster than torch's
    advanced indexing on small frames), the one with the smaller result first, so the cost is
    the frame's pixels (times 1/scale when scaled down)."""
    a, r, c = patch.detach().cpu().numpy(), rows.numpy(), cols.numpy()
    if len(r) * a.shape[2] <= a.shape[1] * len(c):
        return a.take(r, axis=1).take(c, axis=2)
    return a.take(c, axis=2).take(r, axis=1)


def render(left: Tensor, right: Tensor, position: float, size: int, zoom: int = 1,
           centre: tuple[float, float] = (50, 50)) -> Tensor:
    """The displayed frame: both images cropped and scaled by view(H, W, size, zoom, centre),
    wiped at `position` % of the frame's width, divider drawn; that is
    draw_divider(wipe(magnify(crop(left, v), v), magnify(crop(right, v), v), position),
    position), computed straight into the frame from the crop alone: its cost follows the
    frame's size, not the image's.

    left, right: (3, H, W), float in [0, 1] (or both uint8, giving uint8) -> (3, v.height,
    v.width); at zoom 1 an image no bigger than `size` gives (3, H·s, W·s) with
    s = max(1, size // max(H, W)).
    """
    if left.shape != right.shape or left.dim() != 3 or left.dtype != right.dtype:
        raise ValueError(f"render: left and right must be (3, H, W) tensors of one shape and "
                         f"dtype, got {shape_str(left.shape)} {left.dtype} and "
                         f"{shape_str(right.shape)} {right.dtype}")
    v = view(left.shape[-2], left.shape[-1], size, zoom, centre)
    cut = cut_column(v.width, position)
    rows, cols = v.source_rows(), v.source_columns()
    out = torch.from_numpy(np.concatenate([_gather(crop(left, v), rows, cols[:cut]),
                                           _gather(crop(right, v), rows, cols[cut:])], axis=2))
    lo, hi = _divider_span(v.width, cut)
    colour = (torch.tensor([round(c * 255) for c in DIVIDER_COLOR], dtype=torch.uint8)
              if left.dtype == torch.uint8 else torch.tensor(DIVIDER_COLOR, dtype=left.dtype))
    out[:, :, lo:hi] = colour[:, None, None]
    return out


def as_bytes(img: Tensor) -> Tensor:
    """(..., 3, H, W) float in [0, 1] -> uint8 0..255, rounded half to even as to_png does;
    uint8 as is. (numpy's float32 x·255 and rint, bit for bit torch's (x * 255).round(), and
    far faster than it on a busy machine.)"""
    if img.dtype == torch.uint8:
        return img
    return torch.from_numpy(np.rint(img.detach().cpu().numpy() * 255).astype(np.uint8))


def _to_pil(img: Tensor) -> Image.Image:
    return Image.fromarray(np.ascontiguousarray(as_bytes(img).numpy().transpose(1, 2, 0)))


def to_png(img: Tensor) -> bytes:
    """PNG bytes of img: (3, H, W) float in [0, 1] (or uint8)."""
    buffer = io.BytesIO()
    _to_pil(img).save(buffer, format="PNG")
    return buffer.getvalue()


def to_jpeg(img: Tensor, quality: int = STATIC_JPEG_QUALITY) -> bytes:
    """JPEG bytes of img: (3, H, W) float in [0, 1] (or uint8), without chroma subsampling
    (4:4:4), so colour noise survives."""
    buffer = io.BytesIO()
    _to_pil(img).save(buffer, format="JPEG", quality=quality, subsampling=0)
    return buffer.getvalue()


def _data_uri(img: Tensor, kind: str = "png") -> str:
    """img: (3, H, W) in [0, 1] -> data URI of its PNG (kind "png") or JPEG ("jpeg"), base64
    with "/" and "+" percent-encoded (a data URI is percent-decoded before the base64 is read),
    so the page holds no "/a/b/" that looks like a path."""
    raw = to_png(img) if kind == "png" else to_jpeg(img)
    encoded = base64.b64encode(raw).decode("ascii")
    return f"data:image/{kind};base64," + encoded.replace("+", "%2B").replace("/", "%2F")


def _divider_span(width: int, cut: int) -> tuple[int, int]:
    """Columns [lo, hi) of the divider for a wipe cut at column `cut` of a `width`-wide frame."""
    lo = min(max(cut - DIVIDER_WIDTH // 2, 0), width - 1)
    hi = max(min(cut + DIVIDER_WIDTH - DIVIDER_WIDTH // 2, width), lo + 1)
    return lo, hi


# The controls of ImageComparison.static_html, in plain (ES5) JavaScript; DATA is replaced by the
# images and labels. It finds its comparison as the element just before the script. The frame is
# drawn into the canvas pixel by pixel with view()'s and magnify()'s integer arithmetic, so it is
# render()'s frame of the carried images; until an image is decoded (or if a canvas cannot be
# read) the CSS-scaled images under it show the view instead (exact at whole-number scales).
_WIPE_SCRIPT = """(function () {
  var script = document.currentScript, root = script && script.previousElementSibling;
  if (!root || !root.classList || !root.classList.contains("sn-wipe")) { return; }
  var data = DATA;
  function find(name) { return root.querySelector(".sn-wipe-" + name); }
  var index = find("index"), left = find("left"), right = find("right"),
      position = find("position"), zoom = find("zoom"), centreX = find("x"), centreY = find("y"),
      frame = find("frame"), poster = find("poster"), canvas = find("canvas"),
      cutBox = find("cut"), divider = find("divider"), leftImage = find("left-image"),
      rightImage = find("right-image"), label = find("label");
  var H = data.image[0], W = data.image[1], fh = data.height, fw = data.width;
  [leftImage, rightImage].forEach(function (img, n) {  // images the markup holds come once
    data.images[data.inline[n][0]][data.inline[n][1]] = img.getAttribute("src");
  });
  var decoded = {}, pending = {}, order = [], broken = false;
  function roundHalfEven(x) {  // Python's round(), which the widget uses
    var f = Math.floor(x), d = x - f;
    return d > 0.5 ? f + 1 : d < 0.5 ? f : (f % 2 === 0 ? f : f + 1);
  }
  function axis(length, frameLength, num, den, percent) {  // view(), one axis: [start, count]
    var count = Math.min(Math.floor((2 * frameLength - 1) * den / (2 * num)) + 1, length);
    var start = Math.floor((2 * percent * length - 100 * count + 100) / 200);
    return [Math.min(Math.max(start, 0), length - count), count];
  }
  function currentView() {
    var z = data.zooms[parseInt(zoom.value, 10)], num = data.scale[0] * z, den = data.scale[1];
    var rows = axis(H, fh, num, den, parseInt(centreY.value, 10)),
        cols = axis(W, fw, num, den, parseInt(centreX.value, 10));
    return {zoom: z, num: num, den: den, top: rows[0], rows: rows[1], left: cols[0],
            cols: cols[1]};
  }
  function source(pixel, start, count, v) {  // magnify(): the source pixel a frame pixel shows
    return start + Math.min(Math.floor((2 * pixel + 1) * v.den / (2 * v.num)), count - 1);
  }
  function pixels(uri) {  // RGBA bytes of a carried image, or null while it is being decoded
    if (decoded[uri]) { return decoded[uri]; }
    if (!pending[uri] && !broken) {
      pending[uri] = true;
      var img = new Image();
      img.onload = function () {
        try {
          var c = document.createElement("canvas");
          c.width = W;
          c.height = H;
          var context = c.getContext("2d", {willReadFrequently: true});
          context.drawImage(img, 0, 0);
          decoded[uri] = context.getImageData(0, 0, W, H).data;
          order.push(uri);
          while (order.length > 2 * data.names.length) {
            var old = order.shift();
            delete decoded[old];
          }
        } catch (error) {
          broken = true;  // no canvas to read: the CSS-scaled images stay
        }
        delete pending[uri];
        update();
      };
      img.onerror = function () { broken = true; delete pending[uri]; };
      img.src = uri;
    }
    return null;
  }
  function draw(v, cut, lo, hi, k) {
    var lp = pixels(data.images[left.value][k]), rp = pixels(data.images[right.value][k]);
    data.names.forEach(function (name) { pixels(data.images[name][k]); });  // the next choice
    if (!lp || !rp || broken || !canvas.getContext) { return false; }
    var context = canvas.getContext("2d"), out = context.createImageData(fw, fh), o = out.data;
    var xs = new Int32Array(fw), c, r, j = 0;
    for (c = 0; c < fw; c++) { xs[c] = 4 * source(c, v.left, v.cols, v); }
    for (r = 0; r < fh; r++) {
      var row = 4 * W * source(r, v.top, v.rows, v);
      for (c = 0; c < fw; c++, j += 4) {
        if (c >= lo && c < hi) {
          o[j] = data.color[0]; o[j + 1] = data.color[1]; o[j + 2] = data.color[2];
        } else {
          var p = c < cut ? lp : rp, s = row + xs[c];
          o[j] = p[s]; o[j + 1] = p[s + 1]; o[j + 2] = p[s + 2];
        }
        o[j + 3] = 255;
      }
    }
    context.putImageData(out, 0, 0);
    return true;
  }
  function place(img, uri, name, v) {  // the CSS-scaled image under the canvas
    var e = v.num / v.den;
    if (img.getAttribute("src") !== uri) { img.src = uri; }
    img.alt = name;
    img.style.left = (-v.left * e) + "px";
    img.style.top = (-v.top * e) + "px";
    img.style.width = (W * e) + "px";
    img.style.height = (H * e) + "px";
  }
  function update() {
    var i = parseInt(index.value, 10), p = parseInt(position.value, 10), k = i - data.first;
    var v = currentView();
    var cut = roundHalfEven(p / 100 * fw), half = Math.floor(data.divider / 2);
    var lo = Math.min(Math.max(cut - half, 0), fw - 1);
    var hi = Math.max(Math.min(cut + data.divider - half, fw), lo + 1);
    place(leftImage, data.images[left.value][k], left.value, v);
    place(rightImage, data.images[right.value][k], right.value, v);
    cutBox.style.width = cut + "px";
    divider.style.left = lo + "px";
    divider.style.width = (hi - lo) + "px";
    find("index-value").textContent = String(i + 1);
    find("position-value").textContent = String(p);
    find("zoom-value").textContent = v.zoom + "\u00d7";
    find("x-value").textContent = centreX.value;
    find("y-value").textContent = centreY.value;
    label.textContent = data.labels[k];
    var drawn = draw(v, cut, lo, hi, k);
    canvas.style.visibility = drawn ? "visible" : "hidden";
    poster.style.visibility = drawn ? "hidden" : "visible";
    root.setAttribute("data-drawn", drawn ? "canvas" : "images");
  }
  function percent(pixel, length) {  // ImageComparison.recentre's rounding
    return String(Math.min(100, Math.max(0, Math.floor(100 * (pixel + 0.5) / length + 0.5))));
  }
  frame.addEventListener("click", function (event) {  // a click centres the view there
    var box = frame.getBoundingClientRect(), v = currentView();
    var c = Math.min(Math.max(Math.floor((event.clientX - box.left) * fw / box.width), 0), fw - 1);
    var r = Math.min(Math.max(Math.floor((event.clientY - box.top) * fh / box.height), 0), fh - 1);
    centreX.value = percent(source(c, v.left, v.cols, v), W);
    centreY.value = percent(source(r, v.top, v.rows, v), H);
    update();
  });
  [index, left, right, position, zoom, centreX, centreY].forEach(function (control) {
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
    """Wipe comparison of two of the images (noisy / denoised / clean) of one example, zoomable.

    Controls: `index` (which example), `left` / `right` (which images), `position` (wipe, % of
    the frame's width), `zoom` (ZOOMS: 1 shows the whole image, 2..16 a crop that many times
    bigger) and `x` / `y` (the crop's centre, % of the image's width / height); output: `image`
    (PNG of the current frame, about `size` pixels on its longer side whatever the image's size)
    and `label` (PSNR against clean). frame() is the displayed frame, render() of the current
    controls; recentre() moves the centre to a frame pixel, as a click does in static_html.
    """

    def __init__(self, noisy: Tensor, denoised: Tensor, clean: Tensor | None = None,
                 titles: Sequence[str] | None = None, size: int = 256, zoom: int = 1,
                 centre: tuple[int, int] = (50, 50)):
        given = [noisy, denoised] + ([] if clean is None else [clean])
        names = _check_titles(titles, len(given))
        self.images = {name: as_unit_images(x, f"compare: {name}") for name, x in zip(names, given)}
        shapes = {name: tuple(x.shape) for name, x in self.images.items()}
        if len(set(shapes.values())) != 1:
            raise ValueError("compare: all images must have one shape, got "
                             + ", ".join(f"{k} {shape_str(s)}" for k, s in shapes.items()))
        _check_view_args(size, zoom, centre, "compare", whole=True)
        self.size = size
        self.reference = names[2] if clean is not None else None
        self._labels: dict[int, str] = {}
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
        self.zoom = widgets.SelectionSlider(options=[(f"{z}×", z) for z in ZOOMS], value=zoom,
                                            description="zoom")
        self.x = widgets.IntSlider(value=centre[0], min=0, max=100, description="x %")
        self.y = widgets.IntSlider(value=centre[1], min=0, max=100, description="y %")
        self.image = widgets.Image(format="png")
        self.label = widgets.Label()
        self._quiet = False
        super().__init__([widgets.HBox([self.index, self.left, self.right]),
                          widgets.HBox([self.position, self.zoom]),
                          widgets.HBox([self.x, self.y]), self.image, self.label],
                         layout=widgets.Layout(align_items="flex-start"))  # image at its own size
        for control in (self.index, self.left, self.right, self.position, self.zoom, self.x,
                        self.y):
            control.observe(self.refresh, names="value")
        self.refresh()

    def view(self) -> View:
        """The View of the current zoom and centre: which source pixels the frame shows."""
        height, width = self.images[self.left.value].shape[-2:]
        return view(height, width, self.size, self.zoom.value, (self.x.value, self.y.value))

    def frame(self) -> Tensor:
        """The frame for the current controls: (3, v.height, v.width) in [0, 1], v = view();
        at zoom 1 for images within `size`, (3, H·s, W·s) as ever."""
        i = self.index.value
        return render(self.images[self.left.value][i], self.images[self.right.value][i],
                      self.position.value, self.size, self.zoom.value,
                      (self.x.value, self.y.value))

    def recentre(self, row: int, column: int) -> None:
        """Centre the view on the source pixel that frame pixel (row, column) shows: the
        `x` / `y` sliders go to its centre's percent of the width / height, rounded half up
        (static_html does this on a click). One refresh."""
        v = self.view()
        if not (0 <= row < v.height and 0 <= column < v.width):
            raise ValueError(f"recentre: ({row}, {column}) is outside the "
                             f"{v.height}×{v.width} frame")
        height, width = self.images[self.left.value].shape[-2:]
        source_row = v.top + int(v.source_rows()[row])
        source_column = v.left + int(v.source_columns()[column])
        self._quiet = True
        try:
            self.x.value = min(100, max(0, math.floor(100 * (source_column + 0.5) / width + 0.5)))
            self.y.value = min(100, max(0, math.floor(100 * (source_row + 0.5) / height + 0.5)))
        finally:
            self._quiet = False
        self.refresh()

    def psnr_text(self) -> str:
        """PSNR of the current example's noisy and denoised images against clean, and the mean."""
        return self._psnr_text(self.index.value)

    def _psnr_text(self, i: int) -> str:
        if i not in self._labels:  # full-image PSNRs: once per example, not per slider move
            self._labels[i] = self._measure(i)
        return self._labels[i]

    def _measure(self, i: int) -> str:
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
        if self._quiet:
            return
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
        of consecutive ones around example i within STATIC_IMAGES examples and STATIC_BYTES.

        PNG (lossless) when example i's images fit STATIC_BYTES as PNG; otherwise (a
        photograph) all go as JPEG of quality STATIC_JPEG_QUALITY, 4:4:4. Example i is always
        carried, even beyond the budget."""
        count = self.index.max + 1

        def encode(k: int, kind: str) -> dict[str, str]:
            return {name: _data_uri(x[k], kind) for name, x in self.images.items()}

        kind, png, total = "png", {}, 0
        for name, x in self.images.items():  # PNG until it is over the budget
            png[name] = _data_uri(x[i], "png")
            total += len(png[name])
            if total > STATIC_BYTES:
                kind = "jpeg"
                break
        encoded = {i: png if kind == "png" else encode(i, kind)}
        total = sum(map(len, encoded[i].values()))
        first, stop = i, i + 1
        while stop - first < STATIC_IMAGES and (first > 0 or stop < count):
            k = stop if stop < count and (stop - 1 - i <= i - first or first == 0) else first - 1
            uris = encode(k, kind)
            total += sum(map(len, uris.values()))
            if total > STATIC_BYTES:
                break
            encoded[k] = uris
            first, stop = min(first, k), max(stop, k + 1)
        return first, {name: [encoded[k][name] for k in range(first, stop)]
                       for name in self.images}

    def static_html(self) -> str:
        """The comparison as self-contained HTML: every image as a data URI, and the controls
        (image, left, right, wipe %, zoom, x %, y %; a click on the frame centres the view
        there) in plain JavaScript, starting from the widget's current state. Works offline in
        any browser; without JavaScript it shows the starting view.

        The script draws each frame into a canvas from the decoded images with view()'s and
        magnify()'s integer arithmetic, so the browser shows render()'s pixels of the carried
        images: exactly frame() for PNG. Under the canvas, the images themselves, scaled and
        placed by CSS with nearest-neighbour (pixelated) rendering, show the view without
        JavaScript and while an image decodes (exact at whole-number scales). The payloads are
        percent-encoded base64 (no "/"), which a data URI allows, and each image comes once
        (the script's data holds null for the two in the markup's <img>s). A long series is cut
        to the STATIC_IMAGES examples around the current one (and about STATIC_BYTES of data
        URIs); images too big for that as PNG, such as a photograph, go as JPEG (quality
        STATIC_JPEG_QUALITY, no chroma subsampling), so that a notebook does not swell.
        """
        names = list(self.images)
        count = self.index.max + 1
        height, width = self.images[names[0]].shape[-2:]
        v = self.view()
        shown_w, shown_h = v.width, v.height
        i, left, right, position = (self.index.value, self.left.value, self.right.value,
                                    self.position.value)
        first, sources = self._static_images(i)
        last = first + len(sources[names[0]]) - 1
        cut = cut_column(shown_w, position)
        lo, hi = _divider_span(shown_w, cut)
        color = [round(c * 255) for c in DIVIDER_COLOR]
        images = {name: list(uris) for name, uris in sources.items()}
        for name in (left, right):  # in the markup's <img>s, whence the script takes them
            images[name][i - first] = None
        data = {"names": names, "first": first, "images": images,
                "inline": [[left, i - first], [right, i - first]],
                "labels": [self._psnr_text(k) for k in range(first, last + 1)],
                "width": shown_w, "height": shown_h, "image": [height, width],
                "scale": list(fit_scale(height, width, self.size)), "zooms": list(ZOOMS),
                "divider": DIVIDER_WIDTH, "color": color}
        esc = html.escape
        scale = v.num / v.den
        pixelated = ("position:absolute;margin:0;padding:0;border:0;max-width:none;"
                     f"left:{_px(-v.left * scale)};top:{_px(-v.top * scale)};"
                     f"width:{_px(width * scale)};height:{_px(height * scale)};"
                     "image-rendering:crisp-edges;image-rendering:pixelated")

        def options(chosen: str) -> str:
            return "".join(f'<option value="{esc(n)}"{" selected" if n == chosen else ""}>'
                           f"{esc(n)}</option>" for n in names)

        def slider(name: str, label: str, value: int, shown: str, low: int = 0,
                   high: int = 100) -> str:
            return (f'<label>{label} <input class="sn-wipe-{name}" type="range" min="{low}" '
                    f'max="{high}" step="1" value="{value}"> <output class="sn-wipe-{name}-value">'
                    f'{shown}</output></label>')

        carried = "" if last - first + 1 == count else f" (here {first + 1}–{last + 1})"
        index_control = (
            f'<label>image <input class="sn-wipe-index" type="range" min="{first}" max="{last}" '
            f'step="1" value="{i}"{" disabled" if first == last else ""}> <output '
            f'class="sn-wipe-index-value">{i + 1}</output>/{count}{carried}</label>')
        row = '<div style="display:flex;flex-wrap:wrap;align-items:center;gap:4px 16px">'
        zoom = self.zoom.value
        markup = (
            '<div class="sn-wipe" style="display:inline-block;font-size:13px;line-height:1.6">'
            f'{row}{index_control}'
            f'<label>left <select class="sn-wipe-left">{options(left)}</select></label>'
            f'<label>right <select class="sn-wipe-right">{options(right)}</select></label></div>'
            f'{row}{slider("position", "wipe %", position, str(position))}'
            f'{slider("zoom", "zoom", ZOOMS.index(zoom), f"{zoom}×", 0, len(ZOOMS) - 1)}</div>'
            f'{row}{slider("x", "x %", self.x.value, str(self.x.value))}'
            f'{slider("y", "y %", self.y.value, str(self.y.value))}</div>'
            f'<div class="sn-wipe-frame" title="click to centre the view there" '
            f'style="position:relative;overflow:hidden;width:{shown_w}px;height:{shown_h}px;'
            'margin:4px 0;cursor:crosshair">'
            f'<div class="sn-wipe-poster" style="position:absolute;left:0;top:0;'
            f'width:{shown_w}px;height:{shown_h}px;overflow:hidden">'
            f'<img class="sn-wipe-right-image" alt="{esc(right)}" style="{pixelated}" '
            f'src="{sources[right][i - first]}">'
            f'<div class="sn-wipe-cut" style="position:absolute;left:0;top:0;overflow:hidden;'
            f'width:{cut}px;height:{shown_h}px">'
            f'<img class="sn-wipe-left-image" alt="{esc(left)}" style="{pixelated}" '
            f'src="{sources[left][i - first]}"></div>'
            f'<div class="sn-wipe-divider" style="position:absolute;top:0;left:{lo}px;'
            f'width:{hi - lo}px;height:{shown_h}px;background:#{bytes(color).hex()}"></div></div>'
            f'<canvas class="sn-wipe-canvas" width="{shown_w}" height="{shown_h}" '
            'style="position:absolute;left:0;top:0;margin:0;padding:0;border:0;'
            f'width:{shown_w}px;height:{shown_h}px;visibility:hidden;'
            'image-rendering:crisp-edges;image-rendering:pixelated"></canvas></div>'
            f'<div class="sn-wipe-label">{esc(data["labels"][i - first])}</div></div>')
        payload = json.dumps(data, separators=(",", ":")).replace("<", "\\u003c")
        return markup + "<script>" + _WIPE_SCRIPT.replace("DATA", payload) + "</script>"


def _px(value: float) -> str:
    """A CSS length in px: whole numbers without a decimal point, no "-0"."""
    text = f"{value + 0.0:.4f}".rstrip("0").rstrip(".")
    return ("0" if text == "-0" else text) + "px"


def compare(noisy: Tensor, denoised: Tensor, clean: Tensor | None = None,
            titles: Sequence[str] | None = None, size: int = 256, zoom: int = 1,
            centre: tuple[int, int] = (50, 50)) -> ImageComparison:
    """Interactive wipe comparison; noisy, denoised, clean: (N, 3, H, W) float in [0, 1] or uint8.

    titles name the images (default noisy, denoised, clean). The frame is `size` pixels on its
    longer side: small images are upscaled (nearest) by a whole factor towards it, big ones
    (a photograph: pass size=768 or so) scaled down to fit. `zoom` (one of ZOOMS) and `centre`
    (x %, y % of the image) set where the zoom and centre sliders start. Display the returned
    widget in a notebook.
    """
    return ImageComparison(noisy, denoised, clean, titles, size, zoom, centre)


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
