"""scratchnet.tiling and Model.predict(tile=…): large images in tiles, the same result as whole."""
import pytest
import torch

from scratchnet import Model
from scratchnet.grad_mode import no_grad
from scratchnet.models import MODELS, build_model, pad_to_multiple
from scratchnet.tiling import plan_tiles, receptive_radius, tile_margin, window_of


def images(n: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, h, w), dtype=torch.uint8, generator=g)


@pytest.fixture(scope="module", params=sorted(MODELS))
def model(request):
    model = Model(request.param, device="cpu", progress=False)
    model.load_pretrained_model()
    return model


def test_receptive_radius_of_the_shipped_networks():
    assert receptive_radius(build_model("course")) == 6
    assert receptive_radius(build_model("unet")) == 36
    assert tile_margin(build_model("course")) == 8 and tile_margin(build_model("unet")) == 40
    assert receptive_radius(build_model("unet", depth=4)) > 36


@pytest.mark.parametrize("name", sorted(MODELS))
def test_receptive_radius_is_how_far_a_changed_pixel_reaches(name):
    """Change one input pixel (at every phase of the network's grid): the outputs that change lie
    within receptive_radius of it, and some lie exactly that far."""
    torch.manual_seed(0)
    net = build_model(name)
    size = 4 * receptive_radius(net) + 16
    x = torch.rand(1, 3, size, size)
    reach = 0
    with no_grad():
        y = net(x)
        for phase in range(net.multiple):
            i = size // 2 + phase
            x2 = x.clone()
            x2[0, :, i, i] += 0.5
            changed = ((net(x2) - y).abs().amax((0, 1)) > 0).nonzero()
            reach = max(reach, int((changed - i).abs().max()))
    assert reach == receptive_radius(net)


@pytest.mark.parametrize("mode", ["zeros", "reflect", "circular"])
def test_receptive_radius_of_same_padding_with_even_kernels(mode):
    """padding='same' with an even kernel pads one more at the bottom/right: an output pixel
    reads 1 row above and 2 below; the radius is the farthest a changed pixel reaches."""
    from scratchnet import Conv2d, Sequential

    torch.manual_seed(0)
    net = Sequential(Conv2d(3, 3, 4, padding="same", padding_mode=mode),
                     Conv2d(3, 3, (3, 5), padding="same", dilation=2))
    size, i = 40, 20
    x = torch.rand(1, 3, size, size)
    with no_grad():
        x2 = x.clone()
        x2[0, :, i, i] += 0.5
        changed = ((net(x2) - net(x)).abs().amax((0, 1)) > 0).nonzero()
    assert int((changed - i).abs().max()) == receptive_radius(net) == 6


@pytest.mark.parametrize("h, w, tile, multiple, margin", [
    (50, 37, 16, 4, 8), (130, 100, 24, 8, 40), (5, 200, 16, 8, 40), (64, 64, 64, 8, 40),
    (1, 1, 7, 1, 0), (33, 17, 10, 4, 4)])
def test_tiles_cover_the_image_once_on_the_network_grid(h, w, tile, multiple, margin):
    plan = plan_tiles(h, w, tile, margin, multiple)
    covered = torch.zeros(h, w, dtype=torch.int64)
    ph, pw = h + -h % multiple, w + -w % multiple
    for t in plan:
        (a0, a1), (b0, b1) = t.core
        (r0, r1), (c0, c1) = t.window
        covered[a0:a1, b0:b1] += 1
        assert a0 % multiple == 0 and b0 % multiple == 0 and r0 % multiple == 0
        assert (r1 - r0) % multiple == 0 and (c1 - c0) % multiple == 0
        assert r0 == max(0, a0 - margin) and c0 == max(0, b0 - margin)
        assert r1 >= min(ph, a1 + margin) and c1 >= min(pw, b1 + margin)
        assert r1 <= ph and c1 <= pw
        assert a1 - a0 <= max(multiple, tile) and b1 - b0 <= max(multiple, tile)
    assert (covered == 1).all()


@pytest.mark.parametrize("h, w", [(13, 21), (3, 30), (30, 2), (16, 16)])
def test_a_window_is_that_of_the_padded_image(h, w):
    x = images(2, h, w)
    padded = pad_to_multiple(x.float(), 8)
    for t in plan_tiles(h, w, 8, 8, 8):
        (r0, r1), (c0, c1) = t.window
        torch.testing.assert_close(window_of(x, t.window, 8).float(),
                                   padded[:, :, r0:r1, c0:c1], rtol=0, atol=0)


@pytest.mark.parametrize("h, w, tile", [(50, 37, 24), (5, 130, 48), (3, 40, 16),
                                        (67, 45, 40)])
def test_tiled_predict_equals_the_whole_image(model, h, w, tile):
    x = images(2, h, w, seed=h + w)
    whole = model.predict(x, tile=None)
    tiled = model.predict(x, tile=tile)
    assert tiled.shape == whole.shape == x.shape and tiled.dtype == torch.float32
    torch.testing.assert_close(tiled / 255, whole / 255, rtol=0, atol=1e-5)


def test_tiling_bounds_the_pixels_per_forward(model, monkeypatch):
    x = images(1, 90, 118)
    margin, tile = tile_margin(model.net), 40
    shapes = []
    forward = model.net.forward
    monkeypatch.setattr(model.net, "forward", lambda t: shapes.append(t.shape) or forward(t))
    model.predict(x, tile=tile)
    assert len(shapes) == len(plan_tiles(90, 118, tile, margin, model.net.multiple)) > 1
    assert max(s[-2] * s[-1] for s in shapes) <= (tile + 2 * margin) ** 2
    shapes.clear()
    model.predict(x)                                   # default tile 512: the whole image
    assert [tuple(s) for s in shapes] == [(1, 3, 92, 120) if model.net.multiple == 4 else
                                          (1, 3, 96, 120)]


def test_predict_refuses_a_bad_tile():
    model = Model(device="cpu", progress=False)
    for bad in (-8, 2.5, True):
        with pytest.raises(ValueError, match="Model.predict: tile must be a positive integer"):
            model.predict(images(1, 8, 8), tile=bad)
    x = images(1, 40, 24)
    assert torch.equal(model.predict(x, tile=0), model.predict(x, tile=None))   # as --tile 0


def test_tiled_predict_shows_a_progress_bar_when_asked(capsys):
    model = Model(device="cpu")
    model.predict(images(1, 40, 40), tile=16, progress=False)
    assert capsys.readouterr().err == ""
    model.predict(images(1, 40, 40), tile=16, progress=True)
    assert "tile" in capsys.readouterr().err
