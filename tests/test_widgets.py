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

from scratchnet.widgets import ImageComparison, compare, static_grid, wipe

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
    """(parsed markup, the script's data) of widget.static_html()."""
    text = widget.static_html()
    doc = BeautifulSoup(text, "html.parser")
    script = doc.find("script").get_text()
    data = json.loads(re.search(r"var data = (\{.*?\});\n", script).group(1))
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


def test_offline_version_of_big_images_stays_small():
    g = torch.Generator().manual_seed(0)
    big = torch.rand(20, 3, 160, 160, generator=g)
    widget = compare(big, big.flip(0), size=160)
    _, data = fallback(widget)
    assert 1 <= len(data["images"]["noisy"]) < 20  # random 160×160 images: about 100 kB each
    assert len(widget.static_html()) < 2_200_000
