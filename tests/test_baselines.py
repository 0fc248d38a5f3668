"""scratchnet.baselines: classical denoisers beat the noisy input, and tuning picks the best."""
import pytest
import torch

from scratchnet import psnr
from scratchnet.baselines import evaluate_baselines, nlm_denoise, tune, tv_denoise
from scratchnet.data import build_default_dataset


@pytest.fixture(scope="module")
def val():
    _, (noisy, clean) = build_default_dataset(n_train=0, n_val=24, seed=0)
    return noisy.float() / 255, clean.float() / 255


@pytest.mark.parametrize("denoise", [lambda x: nlm_denoise(x, h=0.06, sigma=0.09),
                                     lambda x: nlm_denoise(x, h=0.08),
                                     lambda x: tv_denoise(x, weight=0.08)],
                         ids=["nlm with sigma", "nlm without sigma", "tv"])
def test_denoisers_beat_the_noisy_input(val, denoise):
    noisy, clean = val
    out = denoise(noisy)
    assert out.shape == noisy.shape and out.dtype == noisy.dtype
    assert out.min() >= 0 and out.max() <= 1
    assert float(psnr(out, clean)) > float(psnr(noisy, clean)) + 4


def test_denoisers_work_image_by_image(val):
    noisy, _ = val
    for denoise in (lambda x: nlm_denoise(x, h=0.06, sigma=0.09), lambda x: tv_denoise(x, 0.08)):
        assert torch.allclose(denoise(noisy[:3])[1], denoise(noisy[1:2])[0])


def test_tune_returns_the_best_parameter_and_its_psnr(val):
    noisy, clean = val

    def blend(x, t):
        return clean + t * (x - clean)

    best, score = tune(blend, noisy, clean, [0.9, 0.3, 0.6])
    assert best == 0.3 and score == pytest.approx(float(psnr(blend(noisy, 0.3), clean)))
    with pytest.raises(ValueError, match="empty"):
        tune(blend, noisy, clean, [])


def test_evaluate_baselines_tunes_on_a_prefix_and_reports_all(val):
    noisy, clean = val
    results = evaluate_baselines((noisy * 255).round().to(torch.uint8),
                                 (clean * 255).round().to(torch.uint8), tune_on=8)
    assert set(results) == {"noisy input", "non-local means", "total variation"}
    assert results["noisy input"]["psnr"] == pytest.approx(float(psnr(noisy, clean)), abs=1e-4)
    nlm, tv = results["non-local means"], results["total variation"]
    assert nlm["psnr"] > results["noisy input"]["psnr"] + 4
    assert tv["psnr"] > results["noisy input"]["psnr"] + 4
    assert nlm["psnr"] == pytest.approx(
        float(psnr(nlm_denoise(noisy, nlm["h"], nlm["sigma"]), clean)), abs=1e-4)
    assert tv["psnr"] == pytest.approx(float(psnr(tv_denoise(noisy, tv["weight"]), clean)), abs=1e-4)
    assert 0.07 < nlm["sigma"] < 0.11


def test_baselines_reject_bad_input(val):
    noisy, clean = val
    with pytest.raises(ValueError, match=r"nlm_denoise: expected images of shape \(N, C, H, W\)"):
        nlm_denoise(noisy[0], h=0.1)
    with pytest.raises(ValueError, match="tv_denoise: expected floating-point images, got torch.uint8"):
        tv_denoise((noisy * 255).to(torch.uint8), weight=0.1)
    with pytest.raises(ValueError, match="evaluate_baselines: noisy .* differ"):
        evaluate_baselines(noisy[:4], clean[:5])


def test_bm3d_denoises_colour_images(val):
    from scratchnet.baselines import bm3d_denoise

    noisy, clean = val[0][:2], val[1][:2]
    sigma = float((noisy - clean).std())
    out = bm3d_denoise(noisy, sigma)
    assert out.shape == noisy.shape and out.dtype == noisy.dtype
    assert out.min() >= 0 and out.max() <= 1
    assert float(psnr(out, clean)) > float(psnr(noisy, clean)) + 6
    # the same in two worker processes, through evaluate_baselines (sigma measured likewise)
    results = evaluate_baselines(noisy, clean, tune_on=2, methods=("bm3d",), jobs=2)
    assert list(results) == ["noisy input", "BM3D"]
    bm3d = results["BM3D"]
    assert bm3d["sigma"] == pytest.approx(sigma, rel=1e-6)
    assert bm3d["psnr"] == pytest.approx(float(psnr(out, clean)), abs=1e-4)
    assert bm3d["images"] == 2 and bm3d["tuned_on"] == 2 and bm3d["seconds"] > 0
    with pytest.raises(ValueError, match="bm3d_denoise: sigma must be positive"):
        bm3d_denoise(noisy, 0.0)


def test_evaluate_baselines_gives_the_same_figures_for_any_number_of_jobs(val):
    noisy, clean = val[0][:6], val[1][:6]
    one = evaluate_baselines(noisy, clean, tune_on=4, jobs=1)
    two = evaluate_baselines(noisy, clean, tune_on=4, jobs=2)
    assert list(one) == list(two) == ["noisy input", "non-local means", "total variation"]
    for method in one:
        drop = {"seconds"}
        assert {k: v for k, v in one[method].items() if k not in drop} == \
            {k: v for k, v in two[method].items() if k not in drop}
    assert one["non-local means"]["images"] == 6 and one["non-local means"]["tuned_on"] == 4
    assert list(evaluate_baselines(noisy[:2], clean[:2], tune_on=2, methods=("tv", "nlm"))) \
        == ["noisy input", "total variation", "non-local means"]


def test_evaluate_baselines_refuses_unknown_methods_and_job_counts(val):
    noisy, clean = val
    with pytest.raises(ValueError, match=r"unknown method\(s\) 'wiener'; choose among nlm, tv, "
                                         r"bm3d"):
        evaluate_baselines(noisy, clean, methods=("nlm", "wiener"))
    with pytest.raises(ValueError, match="jobs must be a positive integer, got 0"):
        evaluate_baselines(noisy[:2], clean[:2], jobs=0)
    with pytest.raises(ValueError, match="BM3D needs the noise level.* to be positive"):
        evaluate_baselines(clean[:2], clean[:2], methods=("bm3d",))
