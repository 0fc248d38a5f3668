"""Lowering convolution to matrix products: patch extraction (im2col) and its adjoint (col2im).

`im2col(x)` returns the matrix whose row `(n, i, j)` holds the `C·kh·kw` input values that output
pixel `(i, j)` of image `n` sees, in the order of `weight.reshape(C_out, -1)`. A convolution is then
one matrix product, and its input gradient is `col2im` of a matrix product.

Two implementations give identical results (the tests prove it):
- "reference": `torch.nn.functional.unfold` / `fold`, the textbook formulation;
- "fast": a strided view of the (padded) input copied once, and `kh·kw` strided additions.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

Pair = tuple[int, int]


def pair(value: int | tuple[int, int], name: str = "value") -> Pair:
    """`3` → `(3, 3)`; a 2-sequence of ints is returned as a tuple."""
    if isinstance(value, int):
        return (value, value)
    value = tuple(value)
    if len(value) != 2 or not all(isinstance(v, int) for v in value):
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    return value  # type: ignore[return-value]


def conv_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """`floor((size + 2·padding − dilation·(kernel − 1) − 1) / stride) + 1`."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def pad2d(x: Tensor, padding: Pair, value: float = 0.0) -> Tensor:
    """x: (N, C, H, W) → (N, C, H + 2·ph, W + 2·pw), the border filled with `value`."""
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    n, c, h, w = x.shape
    out = x.new_full((n, c, h + 2 * ph, w + 2 * pw), value)
    out[:, :, ph:ph + h, pw:pw + w] = x
    return out


def window(x: Tensor, start: Pair, size: Pair) -> Tensor:
    """x: (N, C, H, W) → rows start[0] … start[0]+size[0]−1 (same for columns), zeros outside x."""
    n, c, h, w = x.shape
    (r0, c0), (hs, ws) = start, size
    if r0 >= 0 and c0 >= 0 and r0 + hs <= h and c0 + ws <= w:
        return x[:, :, r0:r0 + hs, c0:c0 + ws]
    out = x.new_zeros((n, c, hs, ws))
    src_r, src_c = slice(max(r0, 0), min(r0 + hs, h)), slice(max(c0, 0), min(c0 + ws, w))
    dst_r = slice(src_r.start - r0, src_r.stop - r0)
    dst_c = slice(src_c.start - c0, src_c.stop - c0)
    out[:, :, dst_r, dst_c] = x[:, :, src_r, src_c]
    return out


def patches(xp: Tensor, out_size: Pair, kernel: Pair, stride: Pair, dilation: Pair) -> Tensor:
    """A strided view (N, H_out, W_out, C, kh, kw) of an already padded xp: (N, C, H, W); no copy."""
    n, c = xp.shape[:2]
    s_n, s_c, s_h, s_w = xp.stride()
    return xp.as_strided(
        (n, out_size[0], out_size[1], c, kernel[0], kernel[1]),
        (s_n, stride[0] * s_h, stride[1] * s_w, s_c, dilation[0] * s_h, dilation[1] * s_w),
        xp.storage_offset(),
    )


def im2col(x: Tensor, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair,
           impl: str = "fast") -> Tensor:
    """x: (N, C, H, W) → cols: (N·H_out·W_out, C·kh·kw)."""
    n, c, h, w = x.shape
    out_size = (conv_output_size(h, kernel[0], stride[0], padding[0], dilation[0]),
                conv_output_size(w, kernel[1], stride[1], padding[1], dilation[1]))
    if impl == "reference":
        cols = F.unfold(x, kernel, dilation=dilation, padding=padding, stride=stride)
        return cols.transpose(1, 2).reshape(-1, c * kernel[0] * kernel[1])
    check_impl(impl)
    view = patches(pad2d(x, padding), out_size, kernel, stride, dilation)
    return view.reshape(-1, c * kernel[0] * kernel[1])


def col2im(cols: Tensor, input_shape: tuple[int, ...], kernel: Pair, stride: Pair,
           padding: Pair, dilation: Pair, impl: str = "fast") -> Tensor:
    """The adjoint of `im2col`: cols (N·H_out·W_out, C·kh·kw) → (N, C, H, W), overlaps summed."""
    n, c, h, w = input_shape
    ho = conv_output_size(h, kernel[0], stride[0], padding[0], dilation[0])
    wo = conv_output_size(w, kernel[1], stride[1], padding[1], dilation[1])
    if impl == "reference":
        blocks = cols.reshape(n, ho * wo, -1).transpose(1, 2)
        return F.fold(blocks, (h, w), kernel, dilation=dilation, padding=padding, stride=stride)
    check_impl(impl)
    blocks = cols.reshape(n, ho, wo, c, kernel[0], kernel[1])
    out = cols.new_zeros((n, c, h + 2 * padding[0], w + 2 * padding[1]))
    target = patches(out, (ho, wo), kernel, stride, dilation)
    for i in range(kernel[0]):
        for j in range(kernel[1]):
            target[:, :, :, :, i, j] += blocks[:, :, :, :, i, j]
    return out[:, :, padding[0]:padding[0] + h, padding[1]:padding[1] + w]


def grouped_matmul(a: Tensor, b: Tensor, groups: int) -> Tensor:
    """a: (M, g·K), b: (g, K, P) → (M, g·P): group `k` of the columns of `a` times `b[k]`."""
    if groups == 1:
        return a @ b[0]
    m = a.shape[0]
    a_g = a.reshape(m, groups, -1).transpose(0, 1)
    return torch.bmm(a_g, b).transpose(0, 1).reshape(m, -1)


def grouped_gram(a: Tensor, b: Tensor, groups: int) -> Tensor:
    """a: (M, g·P), b: (M, g·K) → (g, P, K): group `k` of `a`'s columns, transposed, times `b`'s."""
    a_g = a.reshape(a.shape[0], groups, -1).transpose(0, 1)
    b_g = b.reshape(b.shape[0], groups, -1).transpose(0, 1)
    return torch.bmm(a_g.transpose(1, 2), b_g)


def check_impl(impl: str) -> None:
    if impl not in ("fast", "reference"):
        raise ValueError(f"impl must be 'fast' or 'reference', got {impl!r}")
