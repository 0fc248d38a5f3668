"""The wipe comparison widget, driven through its controls without a browser."""
import base64
import io
import json
import math
import re
import urllib.parse

import numpy as np
import pytest
import torch
from bs4 import BeautifulSoup
from hypothesis import given
from hypothesis import strategies as st
from matplotlib.figure import Figure
from PIL import Image

from scratchnet.widgets import (
    STATIC_BYTES,
    ZOOMS,
    ImageComparison,
    compare,
    crop,
    draw_divider,
    magnify,
    render,
    static_grid,
    upscale,
    view,
    wipe,
)

DIVIDER_RGB = (255, 217, 0)


def make_images(n=4, h=32, w=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    clean = torch.rand(n, 3, h, w, generator=g)
    noisy = (clean + 0.2 * torch.randn(n, 3, h, w, generator=g)).clamp(0, 1)
    denoised = (clean + 0.05 * torch.randn(n, 3, h, w, generator=g)).clamp(0, 1)
    return noisy, denoised, clean


def shown(widget: ImageComparison) -> np.ndarray:
    """The displayed PNG decoded: (H, W, 3) uint8."""
    return np.asarray(Image.open(io.BytesIO(widget.image.value)).convert("RGB"))


def expected_pixels(img: torch.Tensor, factor: int) -> np.ndarray:
    """(3, h, w) float in [0, 1] -> (h·factor, w·factor, 3) uint8, blocks of equal pixels."""
    pixels = np.rint(img.permute(1, 2, 0).numpy().astype(np.float64) * 255).astype(np.uint8)
    return np.kron(pixels, np.ones((factor, factor, 1), dtype=np.uint8))


def psnr_db(x: torch.Tensor, y: torch.Tensor) -> float:
    mse = np.mean((x.numpy().astype(np.float64) - y.numpy().astype(np.float64)) ** 2)
    return 10 * math.log10(1 / mse)


@pytest.mark.parametrize("position, cut", [(0, 0), (25, 2), (50, 4), (60, 5), (100, 8)])
def test_wipe_takes_left_columns_up_to_position(position, cut):
    left, right = torch.zeros(3, 5, 8), torch.ones(3, 5, 8)
    out = wipe(left, right, position)
    assert torch.equal(out[..., :cut], left[..., :cut])
    assert torch.equal(out[..., cut:], right[..., cut:])


@given(width=st.integers(1, 40), position=st.floats(0, 100))
def test_wipe_is_a_left_prefix_and_right_suffix(width, position):
    left = torch.rand(3, 2, width, generator=torch.Generator().manual_seed(width))
    right = left + 2
    out = wipe(left, right, position)
    from_left = (out == left).all(dim=(0, 1))
    cut = int(from_left.sum())
    assert from_left[:cut].all() and not from_left[cut:].any()
    assert torch.equal(out[..., cut:], right[..., cut:])
    assert abs(cut - position / 100 * width) <= 0.5


def test_wipe_rejects_bad_input():
    with pytest.raises(ValueError, match=r"wipe: .*\(3, 4, 4\) and \(3, 4, 5\)"):
        wipe(torch.zeros(3, 4, 4), torch.zeros(3, 4, 5), 50)
    with pytest.raises(ValueError, match=r"position must be in \[0, 100\]"):
        wipe(torch.zeros(3, 4, 4), torch.zeros(3, 4, 4), 101)


@pytest.mark.parametrize("position, cut", [(25, 64), (50, 128), (75, 192)])
def test_wipe_slider_reveals_left_image_up_to_the_divider(position, cut):
    noisy, denoised, clean = make_images()
    widget = compare(noisy, denoised, clean)
    widget.position.value = position
    img = shown(widget)
    assert img.shape == (256, 256, 3)
    left, right = expected_pixels(noisy[0], 8), expected_pixels(denoised[0], 8)
    np.testing.assert_array_equal(img[:, : cut - 1], left[:, : cut - 1])
    np.testing.assert_array_equal(img[:, cut + 1:], right[:, cut + 1:])
    assert (img[:, cut - 1: cut + 1] == DIVIDER_RGB).all()


def test_moving_the_slider_moves_only_the_divider_region():
    widget = compare(*make_images())
    before = shown(widget)
    widget.position.value = 60
    after = shown(widget)
    changed = np.flatnonzero((before != after).any(axis=(0, 2)))
    assert changed.min() >= 127 and changed.max() <= 154  # columns between the old and new cut


@pytest.mark.parametrize("position, columns", [(0, [0]), (100, [255])])
def test_divider_stays_inside_the_image_at_the_ends(position, columns):
    noisy, denoised, clean = make_images()
    widget = compare(noisy, denoised, clean)
    widget.position.value = position
    img = shown(widget)
    divider = np.flatnonzero((img == DIVIDER_RGB).all(axis=(0, 2)))
    assert divider.tolist() == columns
    full = expected_pixels(denoised[0] if position == 0 else noisy[0], 8)
    rest = [c for c in range(256) if c not in columns]
    np.testing.assert_array_equal(img[:, rest], full[:, rest])


def test_image_index_and_choosers_update_the_image():
    noisy, denoised, clean = make_images()
    widget = compare(noisy, denoised, clean)
    widget.index.value = 2
    img = shown(widget)
    np.testing.assert_array_equal(img[:, :120], expected_pixels(noisy[2], 8)[:, :120])
    np.testing.assert_array_equal(img[:, 136:], expected_pixels(denoised[2], 8)[:, 136:])
    widget.left.value, widget.right.value = "clean", "noisy"
    img = shown(widget)
    np.testing.assert_array_equal(img[:, :120], expected_pixels(clean[2], 8)[:, :120])
    np.testing.assert_array_equal(img[:, 136:], expected_pixels(noisy[2], 8)[:, 136:])


def test_psnr_label_gives_each_image_against_clean():
    noisy, denoised, clean = make_images()
    widget = compare(noisy, denoised, clean)
    widget.index.value = 1
    text = widget.label.value
    assert text.startswith("image 2/4")
    assert f"noisy {psnr_db(noisy[1], clean[1]):.2f} dB" in text
    assert f"denoised {psnr_db(denoised[1], clean[1]):.2f} dB" in text
    mean = np.mean([psnr_db(denoised[i], clean[i]) for i in range(4)])
    assert "mean over 4: noisy" in text and f"denoised {mean:.2f} dB)" in text


def test_without_clean_there_are_two_choices_and_no_psnr():
    noisy, denoised, _ = make_images(n=1)
    widget = compare(noisy, denoised, titles=["input", "output"])
    assert list(widget.left.options) == ["input", "output"]
    assert widget.index.disabled
    assert "no clean image" in widget.label.value
    widget.left.value = "output"
    np.testing.assert_array_equal(shown(widget)[:, :120], expected_pixels(denoised[0], 8)[:, :120])


def test_uint8_input_is_shown_exactly():
    g = torch.Generator().manual_seed(3)
    clean = torch.randint(0, 256, (2, 3, 16, 16), generator=g, dtype=torch.uint8)
    noisy = torch.randint(0, 256, (2, 3, 16, 16), generator=g, dtype=torch.uint8)
    widget = compare(noisy, clean, clean, size=64)
    widget.position.value = 100
    img = shown(widget)
    pixels = np.kron(noisy[0].permute(1, 2, 0).numpy(), np.ones((4, 4, 1), np.uint8))
    np.testing.assert_array_equal(img[:, :-1], pixels[:, :-1])
    assert "denoised inf dB" in widget.label.value
    assert f"noisy {psnr_db(noisy[0] / 255, clean[0] / 255):.2f} dB" in widget.label.value


def test_uint8_and_float_inputs_give_the_same_picture():
    noisy, denoised, clean = ((x * 255).round() for x in make_images())
    as_float = compare(noisy / 255, denoised / 255, clean / 255)
    as_uint8 = compare(*(x.to(torch.uint8) for x in (noisy, denoised, clean)))
    np.testing.assert_array_equal(shown(as_float), shown(as_uint8))
    assert as_float.label.value == as_uint8.label.value


def test_small_overshoot_is_clamped_and_single_images_accepted():
    noisy, denoised, clean = make_images(n=1)
    widget = compare(noisy[0] * 1.2 - 0.1, denoised[0], clean[0])
    widget.position.value = 100
    expected = expected_pixels((noisy[0] * 1.2 - 0.1).clamp(0, 1), 8)
    np.testing.assert_array_equal(shown(widget)[:, :-1], expected[:, :-1])


def test_non_square_images_keep_their_aspect():
    noisy, denoised, clean = make_images(n=1, h=16, w=32)
    assert shown(compare(noisy, denoised, clean)).shape == (128, 256, 3)


# ------------------------------------------------------------------------ zoom and centre


def photo(h=768, w=1024, seed=0):
    """A photograph's stand-in, (1, 3, h, w) each: smooth colours with stripes, noise on top,
    in steps of 1/255 as a photo's bytes (so that no value rounds differently in float64)."""
    g = torch.Generator().manual_seed(seed)
    y, x = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    clean = torch.stack([x, y, 0.5 + 0.3 * torch.sin(40 * x)])[None].clamp(0, 1)
    noisy = (clean + 0.1 * torch.randn(clean.shape, generator=g)).clamp(0, 1)
    denoised = (clean + 0.02 * torch.randn(clean.shape, generator=g)).clamp(0, 1)
    return tuple((img * 255).round() / 255 for img in (noisy, denoised, clean))


def frame_pixels(widget: ImageComparison) -> np.ndarray:
    """widget.frame() as the PNG holds it: (H, W, 3) uint8."""
    return expected_pixels(widget.frame(), 1)


@pytest.mark.parametrize("position", [0, 30, 50, 100])
def test_zoom_1_is_the_whole_image_as_before(position):
    noisy, denoised, clean = make_images()
    widget = compare(noisy, denoised, clean)
    assert widget.zoom.value == 1 and list(widget.zoom.options) == [
        ("1×", 1), ("2×", 2), ("4×", 4), ("8×", 8), ("16×", 16)]
    widget.position.value = position
    before = draw_divider(wipe(upscale(noisy[0], 256), upscale(denoised[0], 256), position),
                          position)  # the frame before there was a zoom
    assert torch.equal(widget.frame(), before)
    np.testing.assert_array_equal(shown(widget), expected_pixels(before, 1))
    widget.x.value, widget.y.value = 0, 100  # no crop to move at zoom 1
    assert torch.equal(widget.frame(), before)


@pytest.mark.parametrize("centre, rows, columns", [
    ((25, 75), (20, 28), (4, 12)),    # 8 pixels of 32 around (8, 24): columns 4..11, rows 20..27
    ((50, 50), (12, 20), (12, 20)),
    ((0, 100), (24, 32), (0, 8)),     # at the edges the crop stays inside the image
    ((100, 0), (0, 8), (24, 32)),
])
def test_zoom_4_shows_the_crop_around_the_centre_each_pixel_a_32px_square(centre, rows, columns):
    noisy, denoised, clean = make_images()
    widget = compare(noisy, denoised, clean)
    widget.zoom.value = 4
    widget.x.value, widget.y.value = centre
    widget.position.value = 100  # all left image, but the last column (the divider)
    img = shown(widget)
    assert img.shape == (256, 256, 3)  # the display size, at every zoom
    patch = noisy[0][:, rows[0]:rows[1], columns[0]:columns[1]]
    np.testing.assert_array_equal(img[:, :-1], expected_pixels(patch, 32)[:, :-1])
    np.testing.assert_array_equal(img, frame_pixels(widget))


def test_zoomed_wipe_cuts_the_view_where_the_wipe_percent_says():
    noisy, denoised, clean = make_images()
    widget = compare(noisy, denoised, clean)
    widget.zoom.value, widget.x.value, widget.y.value = 8, 40, 60
    widget.position.value = 30
    img = shown(widget)
    cut = round(0.30 * 256)  # 77: the wipe is a place in the view, not in the image
    divider = np.flatnonzero((img == DIVIDER_RGB).all(axis=(0, 2))).tolist()
    assert divider == [cut - 1, cut]
    # 4 source pixels across at 64 px each, around (12.8, 19.2): columns 11..14, rows 17..20
    left = expected_pixels(noisy[0][:, 17:21, 11:15], 64)
    right = expected_pixels(denoised[0][:, 17:21, 11:15], 64)
    np.testing.assert_array_equal(img[:, : cut - 1], left[:, : cut - 1])
    np.testing.assert_array_equal(img[:, cut + 1:], right[:, cut + 1:])


def test_zoom_and_centre_sliders_redraw_the_image():
    widget = compare(*make_images())
    seen = [widget.image.value]
    for control, value in ((widget.zoom, 2), (widget.zoom, 16), (widget.x, 10), (widget.y, 90)):
        control.value = value
        assert widget.image.value not in seen, (control.description, value)
        seen.append(widget.image.value)
        np.testing.assert_array_equal(shown(widget), frame_pixels(widget))
    widget.zoom.value = 1
    assert widget.image.value == seen[0]


def test_a_photo_renders_a_display_sized_frame_from_its_crop():
    noisy, denoised, clean = photo()                       # 1024×768
    widget = compare(noisy, denoised, clean, size=512)
    widget.position.value = 100
    img = shown(widget)
    assert img.shape == (384, 512, 3)                      # fit into 512, not 1024×768
    # scale 1/2: each frame pixel shows the source pixel under its centre, 2k + 1
    odd = noisy[0][:, 1::2, 1::2]
    np.testing.assert_array_equal(img[:, :-1], expected_pixels(odd, 1)[:, :-1])
    widget.zoom.value = 8                                  # scale 4: 128×96 source pixels
    img = shown(widget)
    assert img.shape == (384, 512, 3)
    patch = noisy[0][:, 336:432, 448:576]                  # centred on (512, 384)
    np.testing.assert_array_equal(img[:, :-1], expected_pixels(patch, 4)[:, :-1])
    assert len(widget.image.value) < 384 * 512 * 3 * 1.1   # a display-sized PNG
    np.testing.assert_array_equal(img, frame_pixels(widget))


def test_a_big_image_is_read_only_where_the_view_is():
    noisy, denoised, _ = photo(h=1500, w=2000)
    v = view(1500, 2000, 400, zoom=16, centre=(30, 60))
    poisoned = [x[0].clone() for x in (noisy, denoised)]
    for x in poisoned:  # NaN everywhere but the crop: a frame that read it would show it
        keep = crop(x, v).clone()
        x.fill_(float("nan"))
        crop(x, v).copy_(keep)
    frame = render(*poisoned, 50, 400, zoom=16, centre=(30, 60))
    assert frame.shape == (3, v.height, v.width) == (3, 300, 400)
    assert torch.isfinite(frame).all()
    assert torch.equal(frame, render(noisy[0], denoised[0], 50, 400, 16, (30, 60)))
    assert crop(noisy[0], v)._base is noisy  # a view of the image: no copy of 3 MP


@given(height=st.integers(1, 300), width=st.integers(1, 300), size=st.integers(1, 400),
       zoom=st.sampled_from(ZOOMS), x=st.integers(0, 100), y=st.integers(0, 100))
def test_view_crops_inside_the_image_and_shows_each_pixel_as_a_block(height, width, size, zoom,
                                                                     x, y):
    v = view(height, width, size, zoom, (x, y))
    v1 = view(height, width, size)
    assert (v.height, v.width) == (v1.height, v1.width)          # the frame keeps its size
    assert (v1.top, v1.left, v1.rows, v1.cols) == (0, 0, height, width) or max(
        height, width) > size                                    # zoom 1: all of a small image
    assert 0 <= v.top and v.top + v.rows <= height and 0 <= v.left and v.left + v.cols <= width
    for index, count, frame in ((v.source_rows(), v.rows, v.height),
                                (v.source_columns(), v.cols, v.width)):
        per_pixel = max(1, math.ceil(v.den / v.num))  # source pixels under one frame pixel
        assert index.shape == (frame,) and int(index[-1]) == count - 1
        assert 0 <= int(index[0]) < per_pixel                    # 0 unless scaled down
        steps = index.diff()
        assert ((steps >= 0) & (steps <= per_pixel)).all()
        if v.num % v.den == 0:                                   # a whole scale: equal squares
            block = v.num // v.den
            assert torch.equal(index, (torch.arange(frame) // block).clamp(max=count - 1))
    img = torch.rand(3, height, width, generator=torch.Generator().manual_seed(size))
    patch = crop(img, v)
    assert torch.equal(magnify(patch, v),
                       patch[:, v.source_rows()][:, :, v.source_columns()])


def test_render_is_wipe_and_divider_of_the_magnified_crops():
    noisy, denoised, _ = photo(h=90, w=120)
    for size, zoom, centre, position in ((100, 2, (20, 80), 33), (500, 16, (90, 10), 71),
                                         (64, 1, (50, 50), 0)):
        v = view(90, 120, size, zoom, centre)
        expected = draw_divider(wipe(magnify(crop(noisy[0], v), v),
                                     magnify(crop(denoised[0], v), v), position), position)
        assert torch.equal(render(noisy[0], denoised[0], position, size, zoom, centre), expected)
        as_bytes = render(*((x[0] * 255).round().to(torch.uint8) for x in (noisy, denoised)),
                          position, size, zoom, centre)
        np.testing.assert_array_equal(as_bytes.permute(1, 2, 0).numpy(),
                                      expected_pixels(expected, 1))


def test_recentre_moves_the_view_to_a_frame_pixel_in_one_refresh():
    widget = compare(*make_images())
    widget.zoom.value = 4                    # columns and rows 12..19, 32 px each
    refreshes = []
    widget.image.observe(refreshes.append, names="value")
    widget.recentre(0, 255)                  # shows source (12, 19): centres 12.5 and 19.5 of 32
    assert (widget.x.value, widget.y.value) == (61, 39) and len(refreshes) == 1
    v = widget.view()
    assert (v.left, v.top) == (16, 8)        # round(19.52 - 4), round(12.48 - 4)
    np.testing.assert_array_equal(shown(widget), frame_pixels(widget))
    with pytest.raises(ValueError, match=r"recentre: \(256, 0\) is outside the 256×256 frame"):
        widget.recentre(256, 0)


def test_zoom_and_centre_arguments_set_the_start_and_are_checked():
    noisy, denoised, clean = make_images()
    widget = compare(noisy, denoised, clean, zoom=4, centre=(25, 75))
    assert (widget.zoom.value, widget.x.value, widget.y.value) == (4, 25, 75)
    np.testing.assert_array_equal(shown(widget)[:, :120],
                                  expected_pixels(noisy[0][:, 20:28, 4:12], 32)[:, :120])
    with pytest.raises(ValueError, match=r"zoom must be one of \[1, 2, 4, 8, 16\], got 3"):
        compare(noisy, denoised, clean, zoom=3)
    with pytest.raises(ValueError, match=r"centre must be \(x %, y %\).*got \(101, 0\)"):
        compare(noisy, denoised, clean, centre=(101, 0))
    with pytest.raises(ValueError, match=r"view: zoom must be one of"):
        render(noisy[0], denoised[0], 50, 256, zoom=5)


@pytest.mark.parametrize("bad, error, message", [
    (torch.rand(2, 1, 8, 8), ValueError, r"compare: noisy: .*\(N, 3, H, W\).*\(2, 1, 8, 8\)"),
    (torch.rand(8, 8), ValueError, r"compare: noisy: .*got \(8, 8\)"),
    (torch.rand(0, 3, 8, 8), ValueError, r"no images"),
    (torch.randint(0, 255, (2, 3, 8, 8)), ValueError, r"uint8 .*images, got torch.int64"),
    (torch.rand(2, 3, 8, 8) * 255, ValueError, r"\[0, 1\].*divide 0..255 images by 255"),
    (torch.full((2, 3, 8, 8), float("nan")), ValueError, r"NaN"),
    (torch.rand(2, 3, 8, 8).numpy(), TypeError, r"expected a torch.Tensor of .*images, got ndarray"),
])
def test_bad_inputs_raise_clear_errors(bad, error, message):
    _, denoised, clean = make_images(n=2, h=8, w=8)
    with pytest.raises(error, match=message):
        compare(bad, denoised, clean)


def test_mismatched_shapes_and_titles_raise():
    noisy, denoised, clean = make_images(n=2, h=8, w=8)
    with pytest.raises(ValueError, match=r"one shape.*, clean \(1, 3, 8, 8\)"):
        compare(noisy, denoised, clean[:1])
    with pytest.raises(ValueError, match=r"titles must be 3 distinct names"):
        compare(noisy, denoised, clean, titles=["a", "b"])
    with pytest.raises(ValueError, match=r"size must be a positive int"):
        compare(noisy, denoised, clean, size=0)


@pytest.mark.parametrize("n, columns", [(6, 4), (2, 2)])
def test_static_grid_has_a_row_per_image_kind(n, columns):
    noisy, denoised, clean = make_images()
    fig = static_grid(noisy, denoised, clean, n=n)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 3 * columns
    assert [fig.axes[r * columns].get_ylabel() for r in range(3)] == ["noisy", "denoised", "clean"]
    assert fig.axes[0].get_title() == f"{psnr_db(noisy[0], clean[0]):.2f} dB"
    assert fig.axes[columns].get_title() == f"{psnr_db(denoised[0], clean[0]):.2f} dB"


def test_static_grid_rejects_mismatched_shapes():
    noisy, denoised, clean = make_images()
    with pytest.raises(ValueError, match=r"static_grid: all images must have one shape"):
        static_grid(noisy, denoised[:, :, :16], clean)


# ------------------------------------------------ the offline (text/html) version of the widget

# tests/test_notebooks_hygiene.py's pattern for a machine's path in a notebook's outputs
ABSOLUTE_PATH = re.compile(r"(?<![\w.:/])/(?:[\w.-]+/){2,}")


def fallback(widget: ImageComparison) -> tuple[BeautifulSoup, dict]:
    """(parsed markup, the script's data) of widget.static_html(), the data's images completed
    from the markup's <img>s as the script does (each image is carried once)."""
    text = widget.static_html()
    doc = BeautifulSoup(text, "html.parser")
    script = doc.find("script").get_text()
    data = json.loads(re.search(r"var data = (\{.*?\});\n", script).group(1))
    for (name, k), side in zip(data["inline"], ("left", "right")):
        assert data["images"][name][k] is None, "an image in the markup is carried twice"
        data["images"][name][k] = doc.select_one(f".sn-wipe-{side}-image")["src"]
    return doc, data


def decoded(src: str) -> np.ndarray:
    assert src.startswith("data:image/png;base64,")
    payload = urllib.parse.unquote(src.split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(payload))).convert("RGB"))


def test_displayed_widget_carries_an_offline_html_version():
    widget = compare(*make_images())
    bundle = widget._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == widget.model_id
    assert bundle["text/plain"].startswith("ImageComparison(")
    assert bundle["text/html"] == widget.static_html()


def test_offline_version_holds_every_image_exactly():
    noisy, denoised, clean = make_images(n=3, h=16, w=24)
    doc, data = fallback(compare(noisy, denoised, clean))
    assert data["names"] == ["noisy", "denoised", "clean"] and data["width"] == 240
    for name, images in (("noisy", noisy), ("denoised", denoised), ("clean", clean)):
        assert len(data["images"][name]) == 3
        for k, src in enumerate(data["images"][name]):
            np.testing.assert_array_equal(decoded(src), expected_pixels(images[k], 1))
    frame = doc.select_one(".sn-wipe-frame")
    assert "width:240px" in frame["style"] and "height:160px" in frame["style"]
    for img in doc.find_all("img"):  # the browser scales them up, pixel by pixel
        assert "image-rendering:pixelated" in img["style"] and "width:240px" in img["style"]


def test_offline_version_starts_from_the_widgets_state():
    noisy, denoised, clean = make_images()
    widget = compare(noisy, denoised, clean)
    widget.index.value, widget.left.value, widget.right.value = 2, "clean", "noisy"
    widget.position.value = 30
    doc, data = fallback(widget)
    assert doc.select_one(".sn-wipe-index")["value"] == "2"
    assert doc.select_one(".sn-wipe-position")["value"] == "30"
    assert doc.select_one(".sn-wipe-left option[selected]")["value"] == "clean"
    assert doc.select_one(".sn-wipe-right option[selected]")["value"] == "noisy"
    assert doc.select_one(".sn-wipe-left-image")["src"] == data["images"]["clean"][2]
    assert doc.select_one(".sn-wipe-right-image")["src"] == data["images"]["noisy"][2]
    cut = round(0.30 * 256)  # 77: columns < cut come from the left image, as in wipe()
    assert f"width:{cut}px" in doc.select_one(".sn-wipe-cut")["style"]
    divider = np.flatnonzero((shown(widget) == DIVIDER_RGB).all(axis=(0, 2))).tolist()
    assert f"left:{divider[0]}px;width:{len(divider)}px" in doc.select_one(
        ".sn-wipe-divider")["style"]
    assert doc.select_one(".sn-wipe-label").get_text() == widget.label.value
    labels = []
    for i in range(4):
        widget.index.value = i
        labels.append(widget.label.value)
    assert data["labels"] == labels


def test_offline_version_is_deterministic_and_safe_in_a_notebook():
    noisy, denoised, clean = make_images(n=2)
    text = compare(noisy, denoised, clean, titles=["a</script>", "b", "c"]).static_html()
    assert text == compare(noisy, denoised, clean, titles=["a</script>", "b", "c"]).static_html()
    assert text.count("</script>") == 1 and text.endswith("</script>")
    assert "a&lt;/script&gt;" in text
    assert not ABSOLUTE_PATH.search(text), "base64 '/' would read as a path to the notebook tests"
    assert not re.search(r"(?i)https?:|ftp:|=\"//", text)


def test_offline_version_of_a_single_image_has_no_image_slider():
    noisy, denoised, _ = make_images(n=1)
    doc, data = fallback(compare(noisy, denoised, titles=["input", "output"]))
    assert doc.select_one(".sn-wipe-index").has_attr("disabled")
    assert data["labels"] == ["image 1/1 · no clean image given, so no PSNR"]


def test_offline_version_of_a_long_series_carries_the_images_around_the_current_one():
    noisy, denoised, clean = make_images(n=40, h=8, w=8)
    widget = compare(noisy, denoised, clean)
    widget.index.value = 30
    doc, data = fallback(widget)
    index = doc.select_one(".sn-wipe-index")
    first, last = int(index["min"]), int(index["max"])
    assert last - first + 1 == 32 and (first, last) == (8, 39)  # 9 after 30, the rest before
    assert data["first"] == first and len(data["images"]["clean"]) == 32
    np.testing.assert_array_equal(decoded(data["images"]["clean"][30 - first]),
                                  expected_pixels(clean[30], 1))
    assert data["labels"][0].startswith("image 9/40 ·") and "(here 9–40)" in doc.get_text()
    assert doc.select_one(".sn-wipe-label").get_text() == widget.label.value


def test_offline_version_has_the_zoom_and_centre_controls_in_the_widgets_state():
    noisy, denoised, clean = make_images()
    widget = compare(noisy, denoised, clean)
    widget.zoom.value, widget.x.value, widget.y.value = 4, 25, 75
    doc, data = fallback(widget)
    zoom = doc.select_one("input.sn-wipe-zoom")
    assert (zoom["min"], zoom["max"], zoom["value"]) == ("0", "4", "2")  # ZOOMS[2] == 4
    assert doc.select_one(".sn-wipe-zoom-value").get_text() == "4×"
    assert doc.select_one("input.sn-wipe-x")["value"] == "25"
    assert doc.select_one("input.sn-wipe-y")["value"] == "75"
    assert data["zooms"] == list(ZOOMS) and data["scale"] == [8, 1] and data["image"] == [32, 32]
    canvas = doc.select_one(".sn-wipe-frame canvas.sn-wipe-canvas")
    assert (canvas["width"], canvas["height"]) == ("256", "256")
    # without JavaScript: the images scaled ×32 and shifted to the crop at columns 4, rows 20
    style = doc.select_one(".sn-wipe-left-image")["style"]
    for part in ("left:-128px", "top:-640px", "width:1024px", "height:1024px",
                 "image-rendering:pixelated"):
        assert part in style
    assert "frame.addEventListener(\"click\"" in doc.find("script").get_text()


@pytest.mark.parametrize("h, w", [(600, 800), (768, 1024)])
def test_offline_version_of_a_photo_carries_it_once_as_jpeg_within_the_budget(h, w):
    noisy, denoised, clean = photo(h, w)
    widget = compare(noisy, denoised, clean, size=600)
    text = widget.static_html()
    _, data = fallback(widget)
    assert (data["width"], data["height"], data["scale"]) == (600, 450, [600, w])
    uris = [src for images in data["images"].values() for src in images]
    assert len(uris) == 3 and all(src.startswith("data:image/jpeg;base64,") for src in uris)
    assert sum(map(len, uris)) <= STATIC_BYTES and len(text) < STATIC_BYTES + 20_000
    for src in uris:  # each image once: in the markup or in the data
        assert text.count(src) == 1
    payload = urllib.parse.unquote(data["images"]["noisy"][0].split(",", 1)[1])
    jpeg = Image.open(io.BytesIO(base64.b64decode(payload)))
    assert jpeg.size == (w, h) and jpeg.layer == [(1, 1, 1, 0), (2, 1, 1, 1), (3, 1, 1, 1)]
    restored = torch.from_numpy(np.asarray(jpeg.convert("RGB")).copy()).permute(2, 0, 1) / 255
    assert psnr_db(restored, noisy[0]) > 35  # JPEG 95 without chroma subsampling
    assert not ABSOLUTE_PATH.search(text)


def test_offline_version_of_big_images_stays_small():
    g = torch.Generator().manual_seed(0)
    big = torch.rand(30, 3, 160, 160, generator=g)
    widget = compare(big, big.flip(0), size=160)
    _, data = fallback(widget)
    assert 1 <= len(data["images"]["noisy"]) < 30  # random 160×160 images: about 100 kB each
    assert data["images"]["noisy"][0].startswith("data:image/png;")  # one example fits as PNG
    assert len(widget.static_html()) < STATIC_BYTES + 200_000
