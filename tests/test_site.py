"""The static edition (`make site`, tools/build_site.py): the committed notebooks as HTML pages
that read offline, without a kernel and without a network.

Unit tests check the builder's output (contents, navigation, no external URLs, math left for the
local MathJax, figures, widgets); the browser tests open the site through file:// in headless
Chromium, follow its links through every page, check that MathJax typeset the math and every
figure loaded, drive the wipe comparison's offline version (its zoom on a page of its own, without
building a site) and screenshot pages into artifacts/. The site is built once per session, from
the committed notebooks (nothing is executed).
"""
from __future__ import annotations

import base64
import functools
import importlib.util
import io
import json
import os
import re
import sys
import urllib.parse
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch
from bs4 import BeautifulSoup
from PIL import Image

from scratchnet.widgets import ZOOMS, compare, render

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
ARTIFACTS = ROOT / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
TIMEOUT_MS = 30_000
DIVIDER_RGB = (255, 217, 0)
# a URL with a scheme other than data: (or one starting with //) in an attribute or in CSS
EXTERNAL = re.compile(r"(?i)\b(?:https?|ftp|wss?):|(?:src|href|action)\s*=\s*[\"']?//"
                      r"|url\(\s*[\"']?//|@import")
WIPE_MISSING = ("notebook 08's compare() output has no text/html version: re-execute the "
                "notebooks (make notebooks) with this scratchnet, whose widget carries one")


def _load_builder():
    spec = importlib.util.spec_from_file_location("build_site", ROOT / "tools" / "build_site.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["build_site"] = module
    spec.loader.exec_module(module)
    return module


build_site = _load_builder()


@pytest.fixture(scope="session")
def site(tmp_path_factory) -> tuple[Path, list]:
    """(folder, pages) of the site built once from the committed notebooks."""
    out = tmp_path_factory.mktemp("site") / "site"
    return out, build_site.build_site(ROOT / "notebooks", out)


@functools.lru_cache(maxsize=64)
def soup(path: Path) -> BeautifulSoup:
    """The parsed page (parsed once: the tests only read it)."""
    return BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")


def notebook_markdown(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    return "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


def has_math(path: Path) -> bool:
    return "$" in notebook_markdown(path)


def png_outputs(path: Path) -> int:
    nb = nbformat.read(path, as_version=4)
    return sum("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))


def wipe_fallback_committed() -> bool:
    nb = nbformat.read(ROOT / "notebooks" / "08_training_the_denoiser.ipynb", as_version=4)
    return any("sn-wipe" in o.get("data", {}).get("text/html", "")
               for c in nb.cells for o in c.get("outputs", []))


# ---------------------------------------------------------------- the builder's output


def test_contents_lists_every_notebook_with_title_and_objectives(site):
    out, pages = site
    assert [p.notebook.name for p in pages] == [p.name for p in NOTEBOOKS]
    items = soup(out / "index.html").select("ol.notebooks > li")
    assert len(items) == len(NOTEBOOKS)
    for item, path in zip(items, NOTEBOOKS):
        link = item.find("a")
        assert link["href"] == path.with_suffix(".html").name
        first_heading = re.search(r"^#\s+(.+)$", notebook_markdown(path), re.MULTILINE).group(1)
        assert link.get_text() == first_heading.replace("`", "").replace("*", "")
        summary = item.select_one(".summary")
        assert summary.find(["li", "p"]), f"{path.name}: no learning objectives on the contents"
        assert (out / link["href"]).is_file()


def test_each_page_links_to_previous_next_and_contents(site):
    out, pages = site
    for k, page in enumerate(pages):
        doc = soup(out / page.href)
        assert doc.title.get_text() == page.title
        for nav in doc.select("nav.site-nav"):
            assert nav.select_one('a[rel="contents"]')["href"] == "index.html"
            prev, nxt = nav.select_one('a[rel="prev"]'), nav.select_one('a[rel="next"]')
            assert (prev["href"] if prev else None) == (pages[k - 1].href if k else None)
            assert (nxt["href"] if nxt else None) == (
                pages[k + 1].href if k + 1 < len(pages) else None)
        assert len(doc.select("nav.site-nav")) == 2  # above and below the notebook
        for link in doc.select("a[href]"):
            target = link["href"].split("#")[0]
            assert not target or (out / target).is_file(), f"{page.href}: broken link {target}"


def test_pages_hold_no_external_urls(site):
    out, _ = site
    files = sorted(out.glob("*.html")) + sorted(out.rglob("*.css"))
    assert len(files) == len(NOTEBOOKS) + 2
    for path in files:
        text = path.read_text(encoding="utf-8")
        hits = [text[max(m.start() - 40, 0): m.end() + 40] for m in EXTERNAL.finditer(text)]
        assert not hits, f"{path.name} refers to the outside: {hits[:3]}"
    for path in out.glob("*.html"):
        doc = soup(path)
        for tag in doc.find_all(src=True) + doc.find_all("link", href=True):
            url = tag.get("src") or tag.get("href")
            local = url.startswith("data:") or (out / url).is_file()
            assert local, f"{path.name}: <{tag.name}> loads {url[:60]}, which is not in the site"


def test_one_shared_copy_of_mathjax_and_css(site):
    out, _ = site
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.js")) == [
        "mathjax/tex-svg-full.js"]
    assert (out / "mathjax" / "LICENSE").is_file()
    for path in out.glob("*.html"):
        doc = soup(path)
        assert [s["src"] for s in doc.find_all("script", src=True)] == ["mathjax/tex-svg-full.js"]
        assert [link["href"] for link in doc.find_all("link")] == ["assets/notebook.css"]
        assert all(len(style.get_text()) < 5_000 for style in doc.find_all("style"))
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    notebooks = sum(p.stat().st_size for p in NOTEBOOKS)
    assert total < notebooks * 1.3 + 3 * 2**20, f"the site takes {total / 2**20:.1f} MiB"


def test_math_is_left_as_tex_for_mathjax(site):
    out, pages = site
    math_pages = [p for p in pages if has_math(p.notebook)]
    assert len(math_pages) >= len(pages) - 2, "most notebooks derive something in LaTeX"
    for page in math_pages:
        text = " ".join(m.get_text() for m in soup(out / page.href).select(".jp-RenderedMarkdown"))
        assert "$" in text, f"{page.href}: the notebook's LaTeX is missing from its page"
        assert "\\" in text  # TeX commands kept for MathJax, not mangled by Markdown
    config = soup(out / pages[0].href).find("script", src=False).get_text()
    assert '["$", "$"]' in config and '["$$", "$$"]' in config


def test_figures_are_embedded_in_their_pages(site):
    out, pages = site
    for page in pages:
        images = soup(out / page.href).find_all("img")
        assert len(images) >= png_outputs(page.notebook), page.href
        assert all(img["src"].startswith("data:image/") for img in images), page.href


def test_widget_outputs_become_static(site):
    out, _ = site
    text = (out / "08_training_the_denoiser.html").read_text(encoding="utf-8")
    assert "widget-view+json" not in text and "widget-state+json" not in text
    assert not re.search(r"(?<![0-9])0%\|", text), "progress bars show their final state, not 0%"
    assert re.search(r"epoch\W+1/3\W+100%\|", text)


def test_wipe_comparison_is_on_the_08_page(site):
    out, _ = site
    wipes = soup(out / "08_training_the_denoiser.html").select(".sn-wipe")
    assert wipes, WIPE_MISSING
    assert wipes[0].find_next_sibling("script") is not None


def test_title_and_summary_fall_back_to_the_first_paragraph():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# 05 · `Upsampling` and **more**\n\nFirst words.\n\nMore."),
        nbformat.v4.new_markdown_cell("## Section\n\ntext")])
    assert build_site.title_and_summary(nb, "x") == ("05 · Upsampling and more", "First words.")
    nb.cells.insert(1, nbformat.v4.new_markdown_cell("## Learning objectives\n\n1. a\n2. $b$"))
    assert build_site.title_and_summary(nb, "x") == ("05 · Upsampling and more",
                                                     "1. a\n2. $b$")
    with pytest.raises(ValueError, match="no heading"):
        build_site.title_and_summary(nbformat.v4.new_notebook(), "x.ipynb")


def test_links_between_notebooks_point_at_pages():
    names = {"04_convolution_with_unfold.ipynb"}
    page = ('<a href="04_convolution_with_unfold.ipynb#3-·-backward">§3</a> '
            '<a href="../notebooks/04_convolution_with_unfold.ipynb">04</a> '
            '<a href="elsewhere.ipynb">x</a>')
    assert build_site.local_links(page, names) == (
        '<a href="04_convolution_with_unfold.html#3-·-backward">§3</a> '
        '<a href="04_convolution_with_unfold.html">04</a> <a href="elsewhere.ipynb">x</a>')


def test_refuses_to_replace_a_folder_it_did_not_write(tmp_path):
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(SystemExit, match="not a site written by this script"):
        build_site.build_site(ROOT / "notebooks", tmp_path)
    assert (tmp_path / "mine.txt").read_text() == "keep me"


def _widget_notebook() -> nbformat.NotebookNode:
    """A small notebook: a title, some math, a compare() output and a progress-bar widget."""
    g = torch.Generator().manual_seed(0)
    clean = torch.rand(3, 3, 16, 16, generator=g)
    noisy = (clean + 0.3 * torch.randn(3, 3, 16, 16, generator=g)).clamp(0, 1)
    denoised = (clean + 0.05 * torch.randn(3, 3, 16, 16, generator=g)).clamp(0, 1)
    bundle = compare(noisy, denoised, clean)._repr_mimebundle_()
    many = compare(torch.rand(40, 3, 8, 12, generator=g), torch.rand(40, 3, 8, 12, generator=g))
    many.index.value = 30  # the offline version carries images 8..39 of 40
    bar = {"application/vnd.jupyter.widget-view+json": {"model_id": "box", "version_major": 2,
                                                        "version_minor": 0},
           "text/plain": "epoch 1/1:   0%|          | 0/4"}
    state = {"box": {"state": {"_model_name": "HBoxModel",
                               "children": ["IPY_MODEL_a", "IPY_MODEL_b", "IPY_MODEL_c"]}},
             "a": {"state": {"_model_name": "HTMLModel", "value": "epoch 1/1: 100%"}},
             "b": {"state": {"_model_name": "FloatProgressModel", "value": 4, "max": 4}},
             "c": {"state": {"_model_name": "HTMLModel", "value": " 4/4 [00:01&lt;00:00]"}}}
    cell = nbformat.v4.new_code_cell("compare(noisy, denoised, clean)", execution_count=1)
    cell.outputs = [nbformat.v4.new_output("display_data", data=dict(bundle)),
                    nbformat.v4.new_output("display_data", data=bar),
                    nbformat.v4.new_output("display_data", data=many._repr_mimebundle_())]
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# 00 · A wipe\n\n## Learning objectives\n\n1. see it"),
        nbformat.v4.new_markdown_cell("Inline $x^2$ and displayed $$\\sum_i a_i \\tag{1}$$"),
        cell])
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": state}}
    return nb


def test_widget_with_html_shows_it_and_others_their_saved_state():
    nb = build_site.static_outputs(_widget_notebook())
    wipe, bar, _ = nb.cells[2].outputs
    assert "widgets" not in nb.metadata
    assert "application/vnd.jupyter.widget-view+json" not in wipe.data
    assert 'class="sn-wipe"' in wipe.data["text/html"]
    snapshot = BeautifulSoup(bar.data["text/html"], "html.parser")
    assert snapshot.get_text() == "epoch 1/1: 100% 4/4 [00:01<00:00]"
    assert snapshot.find("progress").attrs == {"max": "4", "value": "4"}
    assert "widget-snapshot-note" not in bar.data["text/html"]  # a progress bar has no controls


def test_a_widget_without_html_shows_its_saved_image_and_controls():
    png = base64.b64encode(b"\x89PNG...").decode()
    state = {"box": {"state": {"_model_name": "VBoxModel",
                               "children": ["IPY_MODEL_s", "IPY_MODEL_d", "IPY_MODEL_i"]}},
             "s": {"state": {"_model_name": "IntSliderModel", "description": "wipe %",
                             "value": 30}},
             "d": {"state": {"_model_name": "DropdownModel", "description": "left",
                             "_options_labels": ["noisy", "clean"], "index": 1}},
             "i": {"state": {"_model_name": "ImageModel", "format": "png"},
                   "buffers": [{"path": ["value"], "encoding": "base64", "data": png}]}}
    snapshot, controls = build_site.widget_html("box", state)
    doc = BeautifulSoup(snapshot, "html.parser")
    assert controls and doc.get_text() == "wipe % 30left clean"
    assert doc.find("img")["src"] == f"data:image/png;base64,{png}"
    state["i"]["state"]["format"] = "url"  # an image from elsewhere is left out
    assert build_site.widget_html("i", state) == ("", False)


# ---------------------------------------------------------------- in a browser


def _missing(reason: str) -> None:
    """Skip locally; fail under CI, where a skipped browser test would hide a broken setup."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so this is an error, not a skip)")
    pytest.skip(reason)


@pytest.fixture
def browser_page():
    """A headless Chromium page, 1280×900 at one device pixel per CSS pixel; yields (page,
    requests), requests being every URL the page asked for."""
    if not Path(CHROMIUM).exists():
        _missing(f"{CHROMIUM} not found; install Debian's chromium package")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright package is not installed")
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                     timeout=TIMEOUT_MS)
        context = browser.new_context(viewport={"width": 1280, "height": 900},
                                      device_scale_factor=1, offline=True)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        requests: list[str] = []
        page.on("request", lambda request: requests.append(request.url))
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        try:
            yield page, requests
            assert not errors, f"JavaScript errors: {errors}"
        except BaseException:
            page.screenshot(path=ARTIFACTS / "site_failure.png")
            raise
        finally:
            browser.close()


def _typeset(page) -> None:
    """Wait until MathJax has loaded and typeset the page."""
    page.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise")
    page.evaluate("() => MathJax.startup.promise")


def _check_rendered(page, name: str, math: bool) -> None:
    _typeset(page)
    typeset = page.locator("mjx-container").count()
    if math:
        assert typeset > 0, f"{name}: no math typeset"
    errors = page.locator('mjx-merror, [data-mml-node="merror"]').count()
    assert errors == 0, f"{name}: {errors} TeX errors"
    raw = page.evaluate("() => Array.from(document.querySelectorAll('.jp-RenderedMarkdown, "
                        ".summary')).map(e => e.innerText).join('\\n')")
    assert "$$" not in raw and not re.search(r"\$[^$\s][^$]*\$", raw), f"{name}: raw TeX left"
    broken = page.evaluate("() => Array.from(document.images).filter(i => !(i.complete && "
                           "i.naturalWidth > 0)).map(i => i.src.slice(0, 60))")
    assert not broken, f"{name}: figures that did not load: {broken}"


def _frame(page, wipe) -> np.ndarray:
    """Screenshot of the wipe's frame at whole-pixel coordinates: (H, W, 3) uint8."""
    frame = wipe.locator(".sn-wipe-frame")
    frame.scroll_into_view_if_needed()
    box = frame.bounding_box()
    png = page.screenshot(clip={"x": round(box["x"]), "y": round(box["y"]),
                                "width": round(box["width"]), "height": round(box["height"])})
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def _data_uri_pixels(src: str) -> np.ndarray:
    payload = urllib.parse.unquote(src.split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(payload))).convert("RGB"))


def _expected_frame(page, wipe, position: int) -> np.ndarray:
    """The frame the widget draws (scratchnet.widgets.render), from the page's own images."""
    left = _data_uri_pixels(wipe.locator(".sn-wipe-left-image").get_attribute("src"))
    right = _data_uri_pixels(wipe.locator(".sn-wipe-right-image").get_attribute("src"))
    as_tensor = [torch.from_numpy(x.copy()).permute(2, 0, 1).float() / 255 for x in (left, right)]
    size = int(wipe.locator(".sn-wipe-frame").bounding_box()["width"])
    frame = render(as_tensor[0], as_tensor[1], position, size)
    return (frame * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


def _drive_wipe(page, wipe, exact: bool) -> None:
    """Move the wipe and the image slider with the keyboard; the frame must follow (exactly the
    widget's frame when `exact`)."""
    position = wipe.locator(".sn-wipe-position")
    before = _frame(page, wipe)
    if exact:
        np.testing.assert_array_equal(before, _expected_frame(page, wipe, 50))
    position.focus()
    for key, value in (("End", 100), ("Home", 0), ("ArrowRight", 1), ("PageUp", None)):
        page.keyboard.press(key)
        value = int(position.input_value()) if value is None else value
        assert int(position.input_value()) == value
        assert wipe.locator(".sn-wipe-position-value").inner_text() == str(value)
        shown = _frame(page, wipe)
        width = shown.shape[1]
        cut = round(value / 100 * width)
        divider = np.flatnonzero((shown == DIVIDER_RGB).all(axis=2).all(axis=0)).tolist()
        assert divider == sorted({min(max(c, 0), width - 1) for c in (cut - 1, cut)}), key
        if exact:
            np.testing.assert_array_equal(shown, _expected_frame(page, wipe, value))
    assert not np.array_equal(before, _frame(page, wipe)), "the frame did not change"
    index = wipe.locator(".sn-wipe-index")
    if index.is_enabled():
        src, label = (wipe.locator(".sn-wipe-left-image").get_attribute("src"),
                      wipe.locator(".sn-wipe-label").inner_text())
        shown, number = _frame(page, wipe), int(index.input_value()) + 2  # shown from 1
        index.focus()
        page.keyboard.press("ArrowRight")
        assert wipe.locator(".sn-wipe-index-value").inner_text() == str(number)
        assert wipe.locator(".sn-wipe-left-image").get_attribute("src") != src
        assert wipe.locator(".sn-wipe-label").inner_text() != label
        assert wipe.locator(".sn-wipe-label").inner_text().startswith(f"image {number}/")
        assert not np.array_equal(shown, _frame(page, wipe)), "another image, the same frame"
    wipe.locator(".sn-wipe-left").select_option(index=wipe.locator(".sn-wipe-left option").count()
                                                - 1)  # the last: clean, or denoised without it
    if exact:
        np.testing.assert_array_equal(_frame(page, wipe),
                                      _expected_frame(page, wipe, int(position.input_value())))


@pytest.mark.browser
def test_site_reads_offline_in_chromium(site, browser_page):
    """Contents → every page through its 'next' link → back to the contents; math typeset,
    figures loaded, nothing requested but the site's own files; the wipe works."""
    out, pages = site
    page, requests = browser_page
    page.goto((out / "index.html").as_uri())
    _check_rendered(page, "index.html", math=False)
    page.screenshot(path=ARTIFACTS / "site_contents.png")
    hrefs = page.eval_on_selector_all("ol.notebooks > li > a", "links => links.map(a => "
                                      "a.getAttribute('href'))")
    assert hrefs == [p.href for p in pages]

    page.locator("ol.notebooks > li > a").first.click()
    for k, expected in enumerate(pages):
        page.wait_for_url(f"**/{expected.href}")
        _check_rendered(page, expected.href, math=has_math(expected.notebook))
        if expected.href.startswith("04_"):
            page.locator("mjx-container[display]").first.scroll_into_view_if_needed()
            page.screenshot(path=ARTIFACTS / "site_04_math.png")
        if expected.href.startswith("08_"):
            wipe = page.locator(".sn-wipe").first
            assert wipe.count(), WIPE_MISSING
            wipe.scroll_into_view_if_needed()
            wipe.screenshot(path=ARTIFACTS / "site_08_wipe.png")
            _drive_wipe(page, wipe, exact=False)
        if k + 1 < len(pages):
            page.locator('nav.top a[rel="next"]').click()
    page.locator('nav.bottom a[rel="prev"]').click()
    page.wait_for_url(f"**/{pages[-2].href}")
    page.locator('nav.top a[rel="contents"]').click()
    page.wait_for_url("**/index.html")

    outside = [u for u in requests if not u.startswith(("file://", "data:"))]
    assert not outside, f"requests that left the site: {outside[:5]}"
    assert any(u.endswith("/mathjax/tex-svg-full.js") for u in requests)


@pytest.mark.browser
def test_wipe_fallback_draws_the_widgets_frame(tmp_path, browser_page):
    """The offline wipe of a compare() output, built into a page like the notebooks: what the
    browser shows is, pixel for pixel, the frame the widget draws."""
    folder = tmp_path / "notebooks"
    folder.mkdir()
    nbformat.write(_widget_notebook(), folder / "00_wipe.ipynb")
    build_site.build_site(folder, tmp_path / "site")
    page, requests = browser_page
    page.goto((tmp_path / "site" / "00_wipe.html").as_uri())
    _check_rendered(page, "00_wipe.html", math=True)
    assert page.locator("mjx-container").count() == 2
    assert page.locator(".sn-wipe").count() == 2
    for k in range(2):
        _drive_wipe(page, page.locator(".sn-wipe").nth(k), exact=True)
    assert page.locator(".sn-wipe-index").nth(1).get_attribute("min") == "8"
    assert all(u.startswith(("file://", "data:")) for u in requests)
    assert json.loads((tmp_path / "site" / "pages.json").read_text())[0]["title"] == "00 · A wipe"


def _canvas_drawn(page, wipe) -> None:
    """Wait until the offline wipe has drawn its current view into its canvas."""
    page.wait_for_function("el => el.getAttribute('data-drawn') === 'canvas'",
                           arg=wipe.element_handle())


def _expected_view(wipe, size: int) -> np.ndarray:
    """render() of the page's own images at the page's controls: (H, W, 3) uint8."""
    left, right = (torch.from_numpy(_data_uri_pixels(wipe.locator(f".sn-wipe-{side}-image")
                                                     .get_attribute("src")).copy())
                   .permute(2, 0, 1).float() / 255 for side in ("left", "right"))
    value = {name: int(wipe.locator(f".sn-wipe-{name}").input_value())
             for name in ("position", "zoom", "x", "y")}
    frame = render(left, right, value["position"], size, ZOOMS[value["zoom"]],
                   (value["x"], value["y"]))
    return (frame * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()


def _check_view(page, wipe, size: int, tolerance: int, what: str) -> np.ndarray:
    """The canvas, once drawn, is render()'s frame of the page's images, up to `tolerance`
    (0 for PNG; JPEG allows for the browser's decoder against PIL's) → the frame shown."""
    _canvas_drawn(page, wipe)
    shown, expected = _frame(page, wipe), _expected_view(wipe, size)
    assert shown.shape == expected.shape, what
    error = np.abs(shown.astype(int) - expected).max()
    assert error <= tolerance, f"{what}: off by up to {error}"
    return shown


def _drive_zoom(page, wipe, widget, size: int, tolerance: int) -> None:
    """Zoom, move the centre and the wipe with the keyboard, then click into the frame; the
    canvas must follow, and the click must centre the view where widget.recentre does."""
    before = _check_view(page, wipe, size, tolerance, "zoom 1")
    assert before.shape == tuple(widget.frame().shape[1:]) + (3,)
    zoom = wipe.locator(".sn-wipe-zoom")
    zoom.focus()
    for key, value in (("ArrowRight", 2), ("ArrowRight", 4), ("End", 16), ("Home", 1),
                       ("ArrowRight", 2), ("ArrowRight", 4), ("ArrowRight", 8)):
        page.keyboard.press(key)
        assert ZOOMS[int(zoom.input_value())] == value, key
        assert wipe.locator(".sn-wipe-zoom-value").inner_text() == f"{value}×"
        shown = _check_view(page, wipe, size, tolerance, f"zoom {value}")
    assert not np.array_equal(before, shown)
    for name, key in (("x", "End"), ("y", "Home"), ("x", "PageDown"), ("position", "End")):
        control = wipe.locator(f".sn-wipe-{name}")
        control.focus()
        page.keyboard.press(key)
        assert wipe.locator(f".sn-wipe-{name}-value").inner_text() == control.input_value()
        _check_view(page, wipe, size, tolerance, f"{name} {key}")
    widget.zoom.value = ZOOMS[int(zoom.input_value())]
    widget.x.value, widget.y.value = (int(wipe.locator(f".sn-wipe-{n}").input_value())
                                      for n in ("x", "y"))
    widget.recentre(200, 10)
    wipe.locator(".sn-wipe-frame").click(position={"x": 10.5, "y": 200.5})
    assert (int(wipe.locator(".sn-wipe-x").input_value()),
            int(wipe.locator(".sn-wipe-y").input_value())) == (widget.x.value, widget.y.value)
    _check_view(page, wipe, size, tolerance, "click")


@pytest.mark.browser
def test_offline_wipe_zooms_and_recentres_like_the_widget(tmp_path, browser_page):
    """static_html of a small series (PNG) and of a photograph (JPEG, scale 3/4) on one page,
    without building a site: the zoom, x % and y % sliders and a click redraw the canvas with
    render()'s pixels of the page's images."""
    g = torch.Generator().manual_seed(1)
    small = [torch.rand(4, 3, 32, 32, generator=g) for _ in range(3)]
    y, x = torch.meshgrid(torch.linspace(0, 1, 600), torch.linspace(0, 1, 800), indexing="ij")
    clean = torch.stack([x, y, 0.5 + 0.3 * torch.sin(40 * x)])[None].clamp(0, 1)
    photo = [(clean + s * torch.randn(clean.shape, generator=g)).clamp(0, 1) for s in (0.1, 0.02)]
    cases = [(compare(*small), 256, "png", 0), (compare(*photo, clean, size=600), 600, "jpeg", 3)]
    path = tmp_path / "wipes.html"
    path.write_text('<!DOCTYPE html><html><head><meta charset="utf-8"><title>wipes</title>'
                    "</head><body>" + "".join(w.static_html() for w, *_ in cases)
                    + "</body></html>", encoding="utf-8")
    page, requests = browser_page
    page.goto(path.as_uri())
    for k, (widget, size, kind, tolerance) in enumerate(cases):
        wipe = page.locator(".sn-wipe").nth(k)
        assert wipe.locator(".sn-wipe-left-image").get_attribute("src").startswith(
            f"data:image/{kind};base64,")
        _drive_zoom(page, wipe, widget, size, tolerance)
        wipe.screenshot(path=ARTIFACTS / f"site_wipe_zoom_{kind}.png")
    assert all(u.startswith(("file://", "data:")) for u in requests)
