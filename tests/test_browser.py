"""The widgets in a real browser: JupyterLab on localhost, driven by headless Chromium.

Runs tests/assets/widget_demo.ipynb from the Run menu, moves the wipe slider with the keyboard and
checks that the image the browser shows follows the slider; runs a notebook it writes, which
compares a 1024×768 photograph's stand-in, moves the zoom and centre sliders and checks that the
image shown is the widget's frame; runs tests/assets/explorer_demo.ipynb,
moves the convolution explorer's kernel slider and checks that the formula and the picture the
browser shows are the package's for the new kernel. Screenshots go to artifacts/.
"""
import inspect
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import nbformat
import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ROOT = Path(__file__).resolve().parents[1]
ASSETS = Path(__file__).resolve().parent / "assets"
ARTIFACTS = ROOT / "artifacts"
DIVIDER_RGB = (255, 217, 0)
TIMEOUT_MS = 30_000
NEW_IMAGE_LOADED = ("([img, old]) => img.getAttribute('src') !== old"
                    " && img.complete && img.naturalWidth > 0")


def _missing(reason: str) -> None:
    """Skip locally; fail under CI, where a skipped browser test would hide a broken setup."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so this is an error, not a skip)")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_up(url: str, server: subprocess.Popen, log: Path, seconds: float = 40) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"JupyterLab exited with {server.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/api/status", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.25)
    raise RuntimeError(f"JupyterLab did not answer at {url} within {seconds} s:\n{log.read_text()}")


def _stop(server: subprocess.Popen) -> None:
    """SIGTERM lets the server shut its kernels down; SIGKILL the group if it hangs."""
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=5)


@pytest.fixture
def lab_url(tmp_path):
    """URL of a token-less JupyterLab serving a copy of tests/assets, isolated from ~/.jupyter."""
    root = tmp_path / "root"
    shutil.copytree(ASSETS, root)
    env = dict(os.environ)
    for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR"):
        env[name] = str(tmp_path / name.lower())
    env.pop("MPLBACKEND", None)
    settings = tmp_path / "settings"
    notification = settings / "@jupyterlab" / "apputils-extension"
    notification.mkdir(parents=True)
    notification /= "notification.jupyterlab-settings"
    notification.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "jupyterlab.log"
    with open(log, "w") as log_file:
        server = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", "--IdentityProvider.token=",
             "--ServerApp.allow_root=True", "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
             "--ServerApp.port_retries=0", f"--ServerApp.root_dir={root}",
             f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}",
             f"--LabApp.user_settings_dir={settings}", "--LabApp.news_url=None",
             "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
             # if this process dies without teardown, the server and its kernel still go away
             "--MappingKernelManager.cull_idle_timeout=300",
             "--MappingKernelManager.cull_interval=60",
             "--ServerApp.shutdown_no_activity_timeout=300"],
            cwd=root, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_until_up(url, server, log)
        yield url
    finally:
        _stop(server)


def _divider_columns(png: bytes) -> list[int]:
    """Columns of a 256×256 picture in the divider colour (all but a few rows, which a
    screenshot at a sub-pixel offset may blur)."""
    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    assert img.shape == (256, 256, 3)
    return np.flatnonzero((img == DIVIDER_RGB).all(axis=2).sum(axis=0) >= 250).tolist()


def _expected_divider(value: int, width: int = 256) -> list[int]:
    cut = round(value / 100 * width)
    return sorted({min(max(c, 0), width - 1) for c in (cut - 1, cut)})


@pytest.fixture
def sync_playwright():
    """playwright's entry point, once chromium and playwright are known to be there."""
    if not Path(CHROMIUM).exists():
        _missing(f"{CHROMIUM} not found; install Debian's chromium package")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("the playwright package is not installed")
    return sync_playwright


def _open_and_run_all(page, lab_url: str, notebook: str) -> None:
    """Open `notebook` in JupyterLab, wait for its kernel, run all its cells from the Run menu."""
    page.goto(f"{lab_url}/lab/tree/{notebook}")
    # the status bar names the kernel once it is connected; before that it says "No Kernel"
    kernel_idle = re.compile(r"^(?!No Kernel).* \| Idle$")
    page.locator(".jp-StatusBar-TextItem", has_text=kernel_idle).wait_for()
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel").get_by_text("Run All Cells", exact=True).click()


@contextmanager
def _widget_page(sync_playwright, lab_url: str, notebook: str, failure_png: str):
    """(page, image): `notebook` run in JupyterLab in headless Chromium, its widget's image
    loaded; a full-page screenshot goes to artifacts/`failure_png` if the body fails."""
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                     timeout=TIMEOUT_MS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.set_default_timeout(TIMEOUT_MS)
        try:
            _open_and_run_all(page, lab_url, notebook)
            image = page.locator(".jp-OutputArea-output img.widget-image")
            image.wait_for()
            page.wait_for_function(NEW_IMAGE_LOADED, arg=[image.element_handle(), ""])
            yield page, image
        except Exception:
            page.screenshot(path=ARTIFACTS / failure_png, full_page=True)
            raise
        finally:
            browser.close()


def _shown(page, image) -> tuple[str, bytes]:
    """(src, PNG bytes) of the displayed image, read back through the browser."""
    src = image.get_attribute("src")
    data = page.evaluate("async src => Array.from(new Uint8Array("
                         "await (await fetch(src)).arrayBuffer()))", src)
    return src, bytes(data)


def test_wipe_slider_moves_the_divider_in_jupyterlab(sync_playwright, lab_url):
    with _widget_page(sync_playwright, lab_url, "widget_demo.ipynb",
                      "browser_failure.png") as (page, image):
        slider = page.locator(".widget-slider", has_text="wipe %")
        handle = slider.locator(".noUi-handle")
        widget = page.locator(".jp-OutputArea-output .widget-vbox").first

        def on_screen() -> bytes:
            """Screenshot of the image's 256×256 box, at whole-pixel coordinates (scrolled into
            the notebook panel's view first: the zoom and centre rows push it down)."""
            image.scroll_into_view_if_needed()
            box = image.bounding_box()
            assert (box["width"], box["height"]) == (256, 256), "image is scaled, not 1:1"
            return page.screenshot(clip={"x": round(box["x"]), "y": round(box["y"]),
                                         "width": 256, "height": 256})

        src, png = _shown(page, image)
        assert float(handle.get_attribute("aria-valuenow")) == 50
        assert _divider_columns(png) == _expected_divider(50)
        assert _divider_columns(on_screen()) == _expected_divider(50)
        widget.screenshot(path=ARTIFACTS / "browser_widget_before.png")

        handle.focus()
        for key, value in (("ArrowLeft", 49), ("End", 100), ("Home", 0), ("ArrowRight", 1)):
            page.keyboard.press(key)
            page.wait_for_function(NEW_IMAGE_LOADED, arg=[image.element_handle(), src])
            assert float(handle.get_attribute("aria-valuenow")) == value, key
            src, png = _shown(page, image)
            assert _divider_columns(png) == _expected_divider(value), key
            assert _divider_columns(on_screen()) == _expected_divider(value), key
        widget.screenshot(path=ARTIFACTS / "browser_widget_after.png")


def _photo():
    """A photograph's stand-in, 1024×768 uint8: (noisy, denoised, clean), each (1, 3, 768, 1024).
    Self-contained: the zoom test's notebook runs its source, the test calls it."""
    import torch

    def as_bytes(x):
        return (x.clamp(0, 1) * 255).round().to(torch.uint8)

    g = torch.Generator().manual_seed(0)
    y, x = torch.meshgrid(torch.linspace(0, 1, 768), torch.linspace(0, 1, 1024), indexing="ij")
    clean = torch.stack([x, y, 0.5 + 0.3 * torch.sin(40 * x)])[None]
    noisy = as_bytes(clean + 0.1 * torch.randn(clean.shape, generator=g))
    denoised = as_bytes(clean + 0.02 * torch.randn(clean.shape, generator=g))
    return noisy, denoised, as_bytes(clean)


def _pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def test_wipe_zoom_slider_zooms_a_photo_in_jupyterlab(sync_playwright, lab_url, tmp_path):
    from scratchnet.widgets import compare, to_png

    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# Zoom demo\n\nWritten by tests/test_browser.py."),
        nbformat.v4.new_code_cell("from scratchnet.widgets import compare\n\n\n"
                                  + inspect.getsource(_photo)
                                  + "\n\nnoisy, denoised, clean = _photo()"),
        nbformat.v4.new_code_cell("compare(noisy, denoised, clean, size=512)")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nbformat.write(nb, tmp_path / "root" / "zoom_demo.ipynb")  # lab_url serves tmp_path/root
    widget = compare(*_photo(), size=512)

    with _widget_page(sync_playwright, lab_url, "zoom_demo.ipynb",
                      "browser_zoom_failure.png") as (page, image):
        box = image.bounding_box()
        assert (round(box["width"]), round(box["height"])) == (512, 384), "not fit, or scaled"
        src, png = _shown(page, image)
        np.testing.assert_array_equal(_pixels(png), _pixels(to_png(widget.frame())))
        shown = [png]
        zoom = page.locator(".widget-slider", has_text="zoom")
        centre_x = page.locator(".widget-slider", has_text="x %")
        for slider, key, control, value in ((zoom, "ArrowRight", widget.zoom, 2),
                                            (zoom, "End", widget.zoom, 16),
                                            (centre_x, "Home", widget.x, 0),
                                            (zoom, "ArrowLeft", widget.zoom, 8)):
            slider.locator(".noUi-handle").focus()
            page.keyboard.press(key)
            page.wait_for_function(NEW_IMAGE_LOADED, arg=[image.element_handle(), src])
            control.value = value
            src, png = _shown(page, image)
            assert png not in shown, f"{key} on {control.description}: the image did not change"
            shown.append(png)
            assert _pixels(png).shape == (384, 512, 3), "a display-sized PNG at every zoom"
            np.testing.assert_array_equal(_pixels(png), _pixels(to_png(widget.frame())),
                                          err_msg=f"{key} on {control.description}")
        assert zoom.locator(".widget-readout").inner_text() == "8×"
        page.locator(".jp-OutputArea-output .widget-vbox").first.screenshot(
            path=ARTIFACTS / "browser_widget_zoom.png")


def _highlight_count(png: bytes) -> int:
    from scratchnet.explorer import HIGHLIGHT
    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    return int((img == HIGHLIGHT).all(axis=2).sum())


def test_explorer_kernel_slider_redraws_patch_and_formula_in_jupyterlab(sync_playwright, lab_url):
    from scratchnet.explorer import Geometry, conv_formula, render

    with _widget_page(sync_playwright, lab_url, "explorer_demo.ipynb",
                      "browser_explorer_failure.png") as (page, image):
        formula = page.locator(".jp-OutputArea-output .widget-html code")
        handle = page.locator(".widget-slider", has_text="kernel").locator(".noUi-handle")
        widget = page.locator(".jp-OutputArea-output .widget-vbox").first

        before = Geometry(5, 3, 2, 1, 1)
        src, png = _shown(page, image)
        assert formula.inner_text() == conv_formula(before)
        assert png == render(before, (0, 0), transposed=False).png
        assert _highlight_count(png) > 0
        widget.screenshot(path=ARTIFACTS / "browser_explorer_before.png")

        handle.focus()
        page.keyboard.press("ArrowRight")                      # kernel 3 → 4
        page.wait_for_function(NEW_IMAGE_LOADED, arg=[image.element_handle(), src])
        after = Geometry(5, 4, 2, 1, 1)
        assert float(handle.get_attribute("aria-valuenow")) == 4
        page.wait_for_function("([el, text]) => el.innerText === text",
                               arg=[formula.element_handle(), conv_formula(after)])
        src, png = _shown(page, image)
        expected = render(after, (0, 0), transposed=False)
        assert png == expected.png
        box = image.bounding_box()
        assert (round(box["width"]), round(box["height"])) == expected.size, \
            "image is scaled, not 1:1"
        # a 4×4 patch at output pixel (0, 0): 16 cells, 7 of them on the padding
        assert _highlight_count(png) == _highlight_count(expected.png) > 0
        widget.screenshot(path=ARTIFACTS / "browser_explorer_after.png")
