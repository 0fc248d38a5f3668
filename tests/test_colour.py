"""scratchnet.data.colour: random hue rotations, saturation changes and inversions of clean crops."""
import math

import pytest
import torch

from scratchnet.data import build_default_dataset
from scratchnet.data.colour import _grey_axis_rotations, random_colour_matrices, random_colours


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_a_third_of_a_turn_about_the_grey_axis_permutes_the_channels_cyclically():
    m = _grey_axis_rotations(torch.tensor([2 * math.pi / 3], dtype=torch.float64))[0]
    assert torch.allclose(m, torch.tensor([[0.0, 0, 1], [1, 0, 0], [0, 1, 0]],
                                          dtype=torch.float64), atol=1e-12)


def test_hue_rotations_are_orthogonal_and_keep_grey():
    m = _grey_axis_rotations(torch.rand(50, generator=gen(), dtype=torch.float64) * 7)
    eye = torch.eye(3, dtype=torch.float64).expand(50, 3, 3)
    assert torch.allclose(m @ m.transpose(1, 2), eye, atol=1e-12)
    assert torch.allclose(torch.linalg.det(m), torch.ones(50, dtype=torch.float64))
    assert torch.allclose(m @ torch.ones(3, dtype=torch.float64), torch.ones(50, 3,
                                                                              dtype=torch.float64))


def test_colour_matrices_keep_grey_and_scale_saturation_within_bounds():
    m = random_colour_matrices(400, gen(1), max_saturation=2.0)
    ones = torch.ones(3, dtype=torch.float64)
    assert torch.allclose(m @ ones, ones.expand(400, 3), atol=1e-12)
    # a colour's distance from the grey axis (its saturation) is scaled by s in [1/2, 2]
    chroma = torch.tensor([1.0, -1.0, 0.0], dtype=torch.float64)
    s = (m @ chroma).norm(dim=1) / chroma.norm()
    assert s.min() >= 0.5 - 1e-9 and s.max() <= 2 + 1e-9
    assert s.min() < 0.6 and s.max() > 1.8
    # both orientations of the hue circle occur: det = s² · (±1)
    signs = torch.linalg.det(m).sign()
    assert 0.35 < (signs < 0).double().mean() < 0.65


def test_grey_images_stay_grey_and_are_inverted_half_the_time():
    grey = torch.randint(0, 256, (400, 1, 5, 7), dtype=torch.uint8, generator=gen(2))
    out = random_colours(grey.expand(-1, 3, -1, -1).contiguous(), gen(3))
    assert out.shape == (400, 3, 5, 7) and out.dtype == torch.uint8
    assert torch.equal(out[:, 0], out[:, 1]) and torch.equal(out[:, 1], out[:, 2])
    same = (out[:, :1] == grey).flatten(1).all(1)
    inverted = (out[:, :1] == 255 - grey).flatten(1).all(1)
    assert bool((same | inverted).all())
    assert 0.4 < inverted.double().mean() < 0.6


def test_a_red_image_takes_every_hue():
    red = torch.zeros(600, 3, 2, 2, dtype=torch.uint8)
    red[:, 0] = 200
    red[:, 1:] = 40
    out = random_colours(red, gen(4)).to(torch.float64)
    dominant = out.mean((2, 3)).argmax(1)
    for c in range(3):   # the dominant channel of the original or of its inversion
        assert 0.2 < (dominant == c).double().mean() < 0.47
    assert out.std(0).min() > 20


def test_random_colours_is_deterministic_per_generator_and_checks_its_input():
    x = torch.randint(0, 256, (10, 3, 4, 4), dtype=torch.uint8, generator=gen(5))
    assert torch.equal(random_colours(x, gen(6)), random_colours(x, gen(6)))
    assert not torch.equal(random_colours(x, gen(6)), random_colours(x, gen(7)))
    with pytest.raises(ValueError, match=r"random_colours: expected uint8 images \(N, 3, H, W\), "
                                         r"got torch.float32 \(10, 3, 4, 4\)"):
        random_colours(x.float(), gen(0))
    with pytest.raises(ValueError, match=r"got torch.uint8 \(10, 1, 4, 4\)"):
        random_colours(x[:, :1], gen(0))


def test_default_set_colours_the_training_crops_only():
    (a, b), (noisy, clean) = build_default_dataset(n_train=300, n_val=50)
    (a0, b0), (noisy0, clean0) = build_default_dataset(n_train=300, n_val=50, colour_augment=False)
    assert torch.equal(noisy, noisy0) and torch.equal(clean, clean0)
    assert not torch.equal(a, a0)
    # colours change before the noise: the two copies still differ by the noise alone
    diff = (a.float() - b.float()).std()
    assert abs(float(diff) - float((a0.float() - b0.float()).std())) < 2.0
