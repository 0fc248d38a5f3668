"""ConvTranspose2d is the adjoint of Conv2d: with shared weights, ⟨conv(x), y⟩ = ⟨x, conv_t(y)⟩,
and each layer's input gradient is the other layer's forward."""
from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from strategies import conv2d_configs, impls, tensors
from torch.testing import assert_close

import scratchnet as sn

TOL = {"rtol": 1e-10, "atol": 1e-10}


def adjoint_pair(cfg, impl: str, data: st.DataObject) -> tuple[sn.Conv2d, sn.ConvTranspose2d]:
    """Conv2d(C_in → C_out) and ConvTranspose2d(C_out → C_in) with one drawn weight, no bias;
    output_padding makes conv_t map conv's output shape back to cfg.input_shape."""
    c_in, c_out, kernel = cfg.args
    kwargs = {k: v for k, v in cfg.kwargs.items() if k != "bias"}
    conv = sn.Conv2d(c_in, c_out, kernel, bias=False, dtype=torch.float64, **kwargs)
    out_size = conv.output_size(*cfg.input_shape[2:])
    output_padding = tuple(
        size - ((o - 1) * s - 2 * p + d * (k - 1) + 1)
        for size, o, s, p, d, k in zip(cfg.input_shape[2:], out_size, conv.stride, conv.padding,
                                        conv.dilation, conv.kernel_size))
    conv_t = sn.ConvTranspose2d(c_out, c_in, kernel, output_padding=output_padding, bias=False,
                                dtype=torch.float64, **kwargs)
    weight = data.draw(tensors(tuple(conv.weight.shape)), label="weight")
    assert conv_t.weight.shape == weight.shape
    conv.load_state_dict({"weight": weight})
    conv_t.load_state_dict({"weight": weight})
    conv.impl = conv_t.impl = impl
    return conv, conv_t


@pytest.mark.parametrize("impl", impls)
@given(cfg=conv2d_configs(), data=st.data())
def test_inner_products_agree(impl, cfg, data):
    conv, conv_t = adjoint_pair(cfg, impl, data)
    x = data.draw(tensors(cfg.input_shape), label="x")
    y = data.draw(tensors((cfg.input_shape[0], conv.out_channels,
                           *conv.output_size(*cfg.input_shape[2:]))), label="y")
    conv_x, conv_t_y = conv(x), conv_t(y)
    assert conv_x.shape == y.shape and conv_t_y.shape == x.shape
    assert_close((conv_x * y).sum(), (x * conv_t_y).sum(), **TOL)


@pytest.mark.parametrize("impl", impls)
@given(cfg=conv2d_configs(), data=st.data())
def test_each_input_gradient_is_the_other_forward(impl, cfg, data):
    conv, conv_t = adjoint_pair(cfg, impl, data)
    x = data.draw(tensors(cfg.input_shape), label="x")
    y = conv(x)
    g = data.draw(tensors(tuple(y.shape)), label="g")
    assert_close(conv.backward(g), conv_t(g), **TOL)
    h = data.draw(tensors(cfg.input_shape), label="h")
    conv_t(g)
    assert_close(conv_t.backward(h), conv(h), **TOL)

