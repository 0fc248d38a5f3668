"""Winograd F(2×2, 3×3): a 3×3, stride-1 convolution with 2.25× fewer multiplications.

Each 2×2 block of output pixels is computed from the 4×4 input tile under it (tiles overlap by
two rows and columns) as Y = Aᵀ [Σ_c (G W Gᵀ) ⊙ (Bᵀ d B)] A, with

    Bᵀ = [[1, 0, −1, 0], [0, 1, 1, 0], [0, −1, 1, 0], [0, 1, 0, −1]],
    G = [[1, 0, 0], [½, ½, ½], [½, −½, ½], [0, 0, 1]],   Aᵀ = [[1, 1, 1, 0], [0, 1, −1, −1]].

The 16 entries ξ of the 4×4 transformed tiles are independent: the sum over input channels is
one matrix product per ξ, (tiles, C_in) · (C_in, C_out), 16 multiplications per 4 outputs
instead of 36. Backward runs the same steps transposed. Called only from `Conv2d`'s fast path,
which the student edition does not have.
"""
from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import torch
from torch import Tensor

from .im2col import Pair


class WinogradSaved(NamedTuple):
    """What `winograd_forward` keeps for backward: the transformed input tiles
    v: (16, N·t_h·t_w, C_in) and kernels u: (16, C_in, C_out)."""
    v: Tensor
    u: Tensor


MIN_ROWS = 1024


def winograd_applies(weight: Tensor, stride: Pair, dilation: Pair, groups: int,
                     output_pixels: int) -> bool:
    """Whether `winograd_forward` computes this convolution: 3×3 kernel, stride 1, no dilation,
    one group, and at least MIN_ROWS output pixels in the batch (N·H_out·W_out). Below that the
    transforms' fixed cost outweighs their 2.25× saving and the patch matrix is faster: in
    interleaved runs of the U-Net's train step on 2 threads of a 2-core AMD EPYC, it took 5 %
    less time at batch 16 and 15 % less at batch 4 with this bound than with Winograd for every
    size, and the same at batch 64."""
    return (tuple(weight.shape[2:]) == (3, 3) and stride == (1, 1) and dilation == (1, 1)
            and groups == 1 and output_pixels >= MIN_ROWS)


@lru_cache(maxsize=16)
def kernel_transform(dtype: torch.dtype, device: torch.device) -> Tensor:
    """G ⊗ G: (16, 9), so that vec(G W Gᵀ) = (G ⊗ G) · vec(W) for a 3×3 kernel W."""
    g = torch.tensor([[1, 0, 0], [.5, .5, .5], [.5, -.5, .5], [0, 0, 1]], dtype=dtype,
                     device=device)
    return torch.kron(g, g)


def tiles(out_size: Pair) -> Pair:
    """Number of 2×2 output blocks along each axis (the last one cropped when odd)."""
    return ((out_size[0] + 1) // 2, (out_size[1] + 1) // 2)


def input_transform(xp: Tensor, t: Pair) -> Tensor:
    """xp: (N, 2·t_h + 2, 2·t_w + 2, C), padded and channels-last → Bᵀ d B of every 4×4 tile d:
    (4, 4, N, t_h, t_w, C). Pass xp unbound: it is freed once the rows are transformed."""
    (th, tw), (n, _, wp, c) = t, xp.shape
    rows = xp.new_empty((4, n, th, wp, c))
    d = [xp[:, k:k + 2 * th:2] for k in range(4)]
    torch.sub(d[0], d[2], out=rows[0])
    torch.add(d[1], d[2], out=rows[1])
    torch.sub(d[2], d[1], out=rows[2])
    torch.sub(d[1], d[3], out=rows[3])
    del xp, d
    v = rows.new_empty((4, 4, n, th, tw, c))
    e = [rows[:, :, :, k:k + 2 * tw:2] for k in range(4)]
    torch.sub(e[0], e[2], out=v[:, 0])
    torch.add(e[1], e[2], out=v[:, 1])
    torch.sub(e[2], e[1], out=v[:, 2])
    torch.sub(e[1], e[3], out=v[:, 3])
    return v


def input_transform_adjoint(dv: Tensor, padded: Pair) -> Tensor:
    """dv: (4, 4, N, t_h, t_w, C) → (N, H_p, W_p, C): each tile's B dv Bᵀ added onto the
    4×4 window it came from (`input_transform`'s adjoint)."""
    _, _, n, th, tw, c = dv.shape
    rows = dv.new_empty((4, n, th, padded[1], c))
    rows[:, :, :, 2 * tw:].zero_()
    scatter_adjoint([dv[:, k] for k in range(4)], [rows[:, :, :, k:k + 2 * tw:2] for k in range(4)])
    out = dv.new_empty((n, *padded, c))
    out[:, 2 * th:].zero_()
    scatter_adjoint(list(rows), [out[:, k:k + 2 * th:2] for k in range(4)])
    return out


def scatter_adjoint(d: list[Tensor], dest: list[Tensor]) -> None:
    """dest[k] (= the k-th row of every tile, tiles two rows apart) receives row k of Bᵀ's
    adjoint applied to d: d₀, d₁ − d₂ + d₃, d₁ + d₂ − d₀, −d₃. dest[0] and dest[1] are
    overwritten, dest[2] and dest[3] (the next tile's rows 0 and 1) added to."""
    dest[0].copy_(d[0])
    torch.sub(d[1], d[2], out=dest[1]).add_(d[3])
    dest[2].add_(d[1]).add_(d[2]).sub_(d[0])
    dest[3].sub_(d[3])


def output_transform(m: Tensor, bias: Tensor | None) -> Tensor:
    """m: (4, 4, N, t_h, t_w, C) → Aᵀ m A + bias of every tile, as (N, t_h, 2, t_w, 2, C).
    Pass m unbound: it is freed once the rows are transformed."""
    _, _, n, th, tw, c = m.shape
    half = m.new_empty((2, 4, n, th, tw, c))
    torch.add(m[0], m[1], out=half[0]).add_(m[2])
    torch.sub(m[1], m[2], out=half[1]).sub_(m[3])
    del m
    y = half.new_empty((n, th, 2, tw, 2, c))
    blocks = y.permute(2, 4, 0, 1, 3, 5)                          # (2, 2, N, t_h, t_w, C)
    torch.add(half[:, 0], half[:, 1], out=blocks[:, 0]).add_(half[:, 2])
    torch.sub(half[:, 1], half[:, 2], out=blocks[:, 1]).sub_(half[:, 3])
    return y if bias is None else y.add_(bias)


def output_transform_adjoint(grad: Tensor) -> Tensor:
    """grad: (N, t_h, 2, t_w, 2, C) → A grad Aᵀ of every tile: (4, 4, N, t_h, t_w, C).
    A applied to (g₀, g₁) is (g₀, g₀ + g₁, g₀ − g₁, −g₁)."""
    n, th, _, tw, _, c = grad.shape
    blocks = grad.permute(2, 4, 0, 1, 3, 5)                       # (2, 2, N, t_h, t_w, C)
    half = grad.new_empty((2, 4, n, th, tw, c))
    expand_adjoint(blocks[:, 0], blocks[:, 1], half.transpose(0, 1))
    dm = grad.new_empty((4, 4, n, th, tw, c))
    expand_adjoint(half[0], half[1], dm)
    return dm


def expand_adjoint(g0: Tensor, g1: Tensor, out: Tensor) -> None:
    """out[0 … 3] = g₀, g₀ + g₁, g₀ − g₁, −g₁ (A times the pair)."""
    out[0] = g0
    torch.add(g0, g1, out=out[1])
    torch.sub(g0, g1, out=out[2])
    torch.neg(g1, out=out[3])


def pad_channels_last(x: Tensor, padding: Pair, size: Pair) -> Tensor:
    """x: (N, C, H, W) → (N, *size, C), x at offset `padding`, zeros around it."""
    n, c, h, w = x.shape
    xp = x.new_zeros((n, *size, c))
    xp[:, padding[0]:padding[0] + h, padding[1]:padding[1] + w] = x.permute(0, 2, 3, 1)
    return xp


def winograd_forward(x: Tensor, weight: Tensor, bias: Tensor | None, padding: Pair,
                     ) -> tuple[Tensor, WinogradSaved]:
    """x: (N, C_in, H, W), weight: (C_out, C_in, 3, 3), bias: (C_out,) or None →
    (y: (N, C_out, H_out, W_out) as a permuted view of channels-last memory, saved)."""
    n, c_in, h, w = x.shape
    c_out = weight.shape[0]
    out_size = (h + 2 * padding[0] - 2, w + 2 * padding[1] - 2)
    t = tiles(out_size)
    v = input_transform(pad_channels_last(x, padding, (2 * t[0] + 2, 2 * t[1] + 2)), t)
    v = v.view(16, -1, c_in)
    u = (kernel_transform(weight.dtype, weight.device) @ weight.reshape(-1, 9).t()).view(
        16, c_out, c_in).transpose(1, 2)
    y = output_transform(torch.bmm(v, u).view(4, 4, n, *t, c_out), bias)
    y = y.view(n, 2 * t[0], 2 * t[1], c_out)
    return y[:, :out_size[0], :out_size[1]].permute(0, 3, 1, 2), WinogradSaved(v, u)


def winograd_backward(grad_out: Tensor, saved: WinogradSaved, input_shape: tuple[int, ...],
                      padding: Pair, input_grad: bool = True,
                      ) -> tuple[Tensor | None, Tensor, Tensor]:
    """grad_out: (N, C_out, H_out, W_out) → (dx: input_shape, dW: (C_out, C_in, 3, 3),
    db: (C_out,)): the forward's steps transposed, dU = Vᵀ·dM and dV = dM·Uᵀ per ξ.
    dx is None, and not computed, without `input_grad`."""
    n, c_in, h, w = input_shape
    c_out, (ho, wo) = grad_out.shape[1], grad_out.shape[2:]
    t = tiles((ho, wo))
    g = grad_out.permute(0, 2, 3, 1)
    if (ho, wo) != (2 * t[0], 2 * t[1]):
        g = torch.cat([g, g.new_zeros((n, 2 * t[0] - ho, wo, c_out))], 1)
        g = torch.cat([g, g.new_zeros((n, 2 * t[0], 2 * t[1] - wo, c_out))], 2)
    dm = output_transform_adjoint(g.reshape(n, t[0], 2, t[1], 2, c_out)).view(16, -1, c_out)
    du = torch.bmm(saved.v.transpose(1, 2), dm)                            # (16, C_in, C_out)
    grad_weight = (kernel_transform(du.dtype, du.device).t()
                   @ du.transpose(1, 2).reshape(16, -1)).t().reshape(c_out, c_in, 3, 3)
    grad_bias = grad_out.sum((0, 2, 3))
    if not input_grad:
        return None, grad_weight, grad_bias
    dv = torch.bmm(dm, saved.u.transpose(1, 2)).view(4, 4, n, *t, c_in)
    del dm
    dxp = input_transform_adjoint(dv, (2 * t[0] + 2, 2 * t[1] + 2))
    grad_input = dxp[:, padding[0]:padding[0] + h, padding[1]:padding[1] + w].permute(0, 3, 1, 2)
    return grad_input, grad_weight, grad_bias
