"""scratchnet.unclip (the clipping bias of Noise2Noise targets) and Model.predict's ensemble and
unclip_sigma options, from the library and from the command line."""
import math
import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from scratchnet import Model, cli
from scratchnet import psnr as sn_psnr
from scratchnet.data.dihedral import dihedral, dihedral_inverse
from scratchnet.grad_mode import no_grad
from scratchnet.unclip import clipped_mean, pair_noise_sigma, unclip

from test_cli import data_dir, table_rows  # noqa: F401  (the tiny data set fixture)


def noisy_copy(clean: torch.Tensor, sigma: float, seed: int) -> torch.Tensor:
    """clean: uint8 → uint8 with Gaussian noise of sigma (0..1 scale), rounded and clipped."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(clean.shape, generator=g, dtype=torch.float64) * sigma * 255
    return (clean.double() + noise).round().clamp(0, 255).to(torch.uint8)


@pytest.mark.parametrize("sigma", [5 / 255, 25 / 255, 0.3])
def test_clipped_mean_is_the_mean_of_clipped_noisy_values(sigma):
    x = torch.tensor([0.0, 0.01, 0.05, 0.2, 0.5, 0.9, 0.97, 1.0], dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    draws = (x + sigma * torch.randn(400_000, len(x), generator=g, dtype=torch.float64))
    empirical = draws.clamp(0, 1).mean(0)
    assert torch.allclose(clipped_mean(x, sigma), empirical, atol=4 * sigma / math.sqrt(400_000))


@settings(max_examples=60, deadline=None)
@given(st.floats(0.002, 0.4), st.lists(st.floats(0, 1), min_size=1, max_size=20))
def test_unclip_inverts_clipped_mean(sigma, values):
    x = torch.tensor(values, dtype=torch.float64)
    assert torch.allclose(unclip(clipped_mean(x, sigma), sigma), x, atol=1e-8)


def test_unclip_is_monotone_and_saturates_outside_the_range_of_clipped_means():
    sigma = 25 / 255
    y = torch.linspace(0, 1, 1001)
    x = unclip(y, sigma)
    assert x.dtype == torch.float32 and (x.diff() >= 0).all()
    low, high = clipped_mean(torch.tensor([0.0, 1.0]), sigma).tolist()
    assert low == pytest.approx(9.9736 / 255, abs=1e-6) and high == pytest.approx(1 - low)
    assert (x[y <= low] == 0).all() and (x[y >= high] == 1).all()
    assert torch.equal(unclip(y, 0.0), y)
    with pytest.raises(ValueError, match="sigma must be ≥ 0"):
        unclip(y, -0.1)


def test_unclip_removes_the_bias_a_noise2noise_network_learns():
    """The best a network can learn from clipped targets is their mean given the clean image:
    near black and white it is far off; unclip brings it back."""
    clean = torch.tensor([0, 3, 10, 128, 250, 255], dtype=torch.float64) / 255
    learned = clipped_mean(clean, 25 / 255)
    assert (learned - clean).abs().max() * 255 > 9
    assert (unclip(learned, 25 / 255) - clean).abs().max() * 255 < 1e-6


@pytest.mark.parametrize("sigma", [5 / 255, 25 / 255, 50 / 255])
def test_pair_noise_sigma_measures_the_noise_from_two_noisy_copies(sigma):
    g = torch.Generator().manual_seed(1)
    clean = torch.randint(0, 256, (64, 3, 32, 32), generator=g, dtype=torch.uint8)
    clean[:16] = 0                                                # saturated images too
    clean[16:24] = 255
    a, b = noisy_copy(clean, sigma, 2), noisy_copy(clean, sigma, 3)
    assert pair_noise_sigma(a, b) == pytest.approx(sigma, rel=0.02)


def test_pair_noise_sigma_needs_two_tensors_of_one_shape_in_0_255():
    with pytest.raises(ValueError, match=r"two non-empty tensors of one shape, got \(2, 3\)"):
        pair_noise_sigma(torch.zeros(2, 3), torch.zeros(3, 2))
    with pytest.raises(ValueError, match="got ndarray and"):
        pair_noise_sigma(np.zeros((2, 3)), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="look like floats in 0..1; give them in 0..255"):
        pair_noise_sigma(torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8))


@pytest.mark.parametrize("k", range(8))
def test_dihedral_inverse_undoes_each_transform(k):
    x = torch.arange(2 * 3 * 4 * 6).reshape(2, 3, 4, 6)
    assert torch.equal(dihedral_inverse(dihedral(x, k), k), x)


@pytest.fixture(scope="module")
def unet():
    model = Model("unet", device="cpu", progress=False)
    model.load_pretrained_model()
    return model


def test_predict_ensemble_averages_the_eight_transforms(unet):
    x = noisy_copy(torch.full((2, 3, 24, 40), 120, dtype=torch.uint8), 25 / 255, 0)
    unit = x.float() / 255
    with no_grad():
        unet.net.eval()
        expected = sum(dihedral_inverse(unet.net(dihedral(unit, k)), k) for k in range(8)) / 8
        unet.net.train()
    got = unet.predict(x, ensemble=True)
    assert got.shape == x.shape
    assert torch.allclose(got, expected.clamp(0, 1) * 255, atol=1e-4)
    assert not torch.allclose(got, unet.predict(x), atol=1e-2)


def test_predict_ensemble_and_unclip_in_tiles_equal_the_whole_image(unet):
    x = noisy_copy(torch.randint(0, 256, (1, 3, 70, 90), generator=torch.Generator()
                                 .manual_seed(4), dtype=torch.uint8), 25 / 255, 5)
    options = {"ensemble": True, "unclip_sigma": 25 / 255}
    whole = unet.predict(x, tile=None, **options)
    tiled = unet.predict(x, tile=32, **options)
    assert (whole - tiled).abs().max() < 1e-3


def test_predict_unclip_is_unclip_of_the_plain_output(unet):
    x = noisy_copy(torch.randint(0, 256, (3, 3, 16, 16), generator=torch.Generator()
                                 .manual_seed(6), dtype=torch.uint8), 25 / 255, 7)
    plain = unet.predict(x)
    expected = unclip(plain / 255, 25 / 255) * 255
    assert torch.allclose(unet.predict(x, unclip_sigma=25 / 255), expected, atol=1e-3)


@pytest.mark.parametrize("bad", [-0.1, 1.0, 25])
def test_predict_refuses_a_noise_level_off_the_unit_scale(unet, bad):
    with pytest.raises(ValueError, match="unclip_sigma is the noise level on the 0..1 scale"):
        unet.predict(torch.zeros(1, 3, 8, 8), unclip_sigma=bad)


def test_both_options_beat_the_plain_network_on_held_out_crops(unet):
    from scratchnet.data import build_default_dataset

    (a, b), (noisy, clean) = build_default_dataset(n_train=400, n_val=64)
    sigma = pair_noise_sigma(a, b)                    # from noisy pairs alone
    target = clean.float() / 255

    def score(**options):
        return float(((unet.predict(noisy, **options) / 255 - target) ** 2)
                     .flatten(1).mean(1).log10().mul(-10).mean())

    plain, ensemble = score(), score(ensemble=True)
    unclipped, both = score(unclip_sigma=sigma), score(ensemble=True, unclip_sigma=sigma)
    assert ensemble > plain + 0.1 and unclipped > plain + 0.5 and both > unclipped + 0.1


def test_evaluate_adds_a_row_with_ensemble_and_unclip(data_dir, capsys):  # noqa: F811
    assert cli.main(["evaluate", "--model", "course", "--data-dir", str(data_dir), "--max-val",
                     "8", "--no-baselines", "--ensemble", "--unclip", "--device", "cpu"]) == 0
    out, err = capsys.readouterr()
    rows = table_rows(out)
    measured = re.search(r"--unclip: noise level (\d+\.\d\d) \(0\.\.255\), measured from 96 "
                         r"noisy pairs of", err)
    assert measured and abs(float(measured[1]) - 25) < 0.5
    assert list(rows) == ["noisy input", "course (shipped weights)",
                          f"course (shipped weights) + 8× self-ensemble + unclip "
                          f"(σ={float(measured[1]):.1f})"]
    assert cli.main(["evaluate", "--model", "course", "--data-dir", str(data_dir), "--max-val",
                     "8", "--no-baselines", "--unclip", "20", "--device", "cpu"]) == 0
    out, err = capsys.readouterr()
    assert "course (shipped weights) + unclip (σ=20.0)" in out and err == ""


def test_denoise_with_ensemble_and_unclip(tmp_path, capsys):
    src, dst = tmp_path / "noisy.png", tmp_path / "out.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (20, 28, 3), dtype=np.uint8)).save(src)
    assert cli.main(["denoise", str(src), str(dst), "--model", "course", "--device", "cpu",
                     "--ensemble", "--unclip", "25", "--no-progress"]) == 0
    with Image.open(dst) as img:
        assert img.size == (28, 20)
    with pytest.raises(SystemExit):
        cli.main(["denoise", str(src), str(dst), "--unclip", "255"])
    assert "argument --unclip: expected a noise level in (0, 255), got 255" in \
        capsys.readouterr().err


def test_evaluate_unclip_without_a_level_needs_the_training_pairs(tmp_path, capsys):
    assert cli.main(["evaluate", "--model", "course", "--data-dir", str(tmp_path), "--unclip",
                     "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert f"--unclip without SIGMA measures the noise level from the noisy pairs of " \
           f"{tmp_path / 'train_data.pkl'}, which does not exist: give the level (--unclip 25)" in err
    assert list(tmp_path.iterdir()) == []                    # nothing built behind the user's back


def test_evaluate_unclips_the_baselines_too(data_dir, capsys):  # noqa: F811
    assert cli.main(["evaluate", "--model", "course", "--data-dir", str(data_dir), "--max-val",
                     "6", "--tune-on", "3", "--baselines", "tv", "--unclip", "25", "--device",
                     "cpu", "--no-progress"]) == 0
    rows = table_rows(capsys.readouterr().out)
    assert list(rows) == ["noisy input", "total variation", "total variation + unclip (σ=25.0)",
                          "course (shipped weights)", "course (shipped weights) + unclip (σ=25.0)"]
    assert rows["total variation + unclip (σ=25.0)"][0] != rows["total variation"][0]


def test_evaluate_baselines_scores_the_unclipped_images():
    from scratchnet.baselines import evaluate_baselines, tv_denoise

    g = torch.Generator().manual_seed(8)
    clean = torch.randint(0, 256, (4, 3, 16, 16), generator=g, dtype=torch.uint8)
    clean[:2] //= 8                                                  # dark images
    noisy = noisy_copy(clean, 25 / 255, 9)
    result = evaluate_baselines(noisy, clean, tune_on=4, methods=("tv",),
                                unclip_sigma=25 / 255)["total variation"]
    denoised = tv_denoise(noisy.float() / 255, result["weight"])
    expected = sn_psnr(unclip(denoised.clamp(0, 1), 25 / 255), clean.float() / 255)
    assert result["psnr_unclipped"] == pytest.approx(float(expected), abs=1e-6)


def test_predict_checks_the_types_of_its_options(unet):
    with pytest.raises(TypeError, match="ensemble must be True or False, got 'yes'"):
        unet.predict(torch.zeros(1, 3, 8, 8), ensemble="yes")
    with pytest.raises(ValueError, match="unclip_sigma is the noise level"):
        unet.predict(torch.zeros(1, 3, 8, 8), unclip_sigma="0.1")

