"""The denoisers: shapes, output ranges, clear errors, and their structure (scratchnet modules)."""
import pytest
import torch

import scratchnet as sn
from scratchnet.models import MODELS, build_model, course_denoiser, pad_to_multiple, unet_denoiser


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("blocks", [(1, 1), (2, 3), (4, 4), (5, 11)])
def test_maps_images_to_images_of_the_same_shape(name, blocks):
    torch.manual_seed(0)
    model = build_model(name)
    x = torch.rand(2, 3, *(b * model.multiple for b in blocks))
    y = model(x)
    assert y.shape == x.shape and y.dtype == torch.float32
    assert torch.isfinite(y).all()
    grad = model.backward(torch.randn_like(y))
    assert grad.shape == x.shape


def test_course_denoiser_is_the_course_network():
    model = course_denoiser()
    kinds = [type(m).__name__ for m in model]
    assert kinds == ["Conv2d", "ReLU", "Conv2d", "ReLU", "Upsampling", "ReLU", "Upsampling",
                     "Sigmoid"]
    assert model[0].stride == (2, 2) and model[0].kernel_size == (2, 2)
    assert model[4].padding == (1, 1) and model[6].out_channels == 3
    assert sum(p.numel() for p in course_denoiser(8).parameters()) \
        < sum(p.numel() for p in model.parameters())
    y = model(torch.rand(1, 3, 8, 8))
    assert 0 < y.min() and y.max() < 1


def test_unet_has_skip_connections_and_a_sigmoid_output():
    model = unet_denoiser()
    kinds = {type(m).__name__ for m in model.modules()}
    assert {"Concat", "Identity", "Conv2d", "Upsampling", "LeakyReLU", "Sigmoid"} <= kinds
    assert all(type(m).__module__.startswith("scratchnet.") for m in model.modules())
    with torch.no_grad():
        torch_model = sn.to_torch(model)
        x = torch.rand(2, 3, 16, 16)
        torch.testing.assert_close(model(x), torch_model(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("shape", [(1, 3, 30, 32), (1, 3, 32, 6), (1, 1, 32, 32), (3, 32, 32)])
def test_bad_shapes_raise_a_clear_error(name, shape):
    model = build_model(name)
    with pytest.raises(ValueError, match=r"denoiser: .*\(" + ", ".join(map(str, shape))):
        model(torch.rand(shape))


def test_multiples():
    assert course_denoiser().multiple == 4
    assert unet_denoiser().multiple == 8 and unet_denoiser(depth=2).multiple == 4
    with pytest.raises(ValueError, match="depth must be ≥ 1"):
        unet_denoiser(depth=0)


@pytest.mark.parametrize("shape", [(1, 3, 8, 8), (2, 3, 5, 13), (1, 3, 2, 3)])
def test_pad_to_multiple_reflects_and_crops_back(shape):
    x = torch.rand(shape)
    y = pad_to_multiple(x, 8)
    assert y.shape[-2] % 8 == 0 and y.shape[-1] % 8 == 0
    assert y.shape[-2] - x.shape[-2] < 8 and y.shape[-1] - x.shape[-1] < 8
    assert torch.equal(y[..., :shape[2], :shape[3]], x)
    if shape == (2, 3, 5, 13):
        assert torch.equal(y[..., 5, :13], x[..., 3, :])       # reflection about the last row
    assert pad_to_multiple(x, 1) is x


def test_build_model_passes_kwargs_and_rejects_unknown_names():
    model = build_model("course", channels=8)
    assert model[0].out_channels == 8
    assert model.spec == {"name": "course", "kwargs": {"channels": 8}}
    rebuilt = build_model(model.spec["name"], **model.spec["kwargs"])
    assert [p.shape for p in rebuilt.parameters()] == [p.shape for p in model.parameters()]
    with pytest.raises(ValueError, match="unknown model 'resnet'.*course.*unet"):
        build_model("resnet")
