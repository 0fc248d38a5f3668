"""Lowering convolution to matrix products: patch extraction (im2col) and its adjoint (col2im).

`im2col(x)` returns the matrix whose row `(n, i, j)` holds the `C·kh·kw` input values that output
pixel `(i, j)` of image `n` sees, in the order of `weight.reshape(C_out, -1)`. A convolution is then
one matrix product, and its input gradient is `col2im` of a matrix product.

The textbook implementation, `impl="reference"`, is `unfold` / `fold`, written from the index
formula, one strided slice per kernel tap. The instructor's edition adds fast paths (`impl="fast"`,
proven equal by the tests; the student edition has none): a strided view of the padded input
copied once, and `kh·kw` strided additions — or one strided copy when the windows do not overlap;
and a stride-1 convolution without a patch matrix (`shifted_conv`): with the padded input in
channels-last order flattened to rows, the pixel `kernel tap (u, v)` away from row r is row
r + u·W + v, so the convolution is a sum of `kh·kw` matrix products of row ranges of one matrix.
"""
from __future__ import annotations

import torch
from torch import Tensor

from .impl import check_impl

### BEGIN FAST PATH
from .impl import lever_on
### END FAST PATH

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


def pad2d(x: Tensor, padding: Pair, value: float = 0.0,
          memory_format: torch.memory_format = torch.contiguous_format) -> Tensor:
    """x: (N, C, H, W) → (N, C, H + 2·ph, W + 2·pw), the border filled with `value`."""
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    n, c, h, w = x.shape
    out = torch.empty((n, c, h + 2 * ph, w + 2 * pw), dtype=x.dtype, device=x.device,
                      memory_format=memory_format).fill_(value)
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


def select_pixels(x: Tensor, rows: Tensor, cols: Tensor) -> Tensor:
    """x: (…, H, W) → (…, len(rows), len(cols)): y[…, i, j] = x[…, rows[i], cols[j]]."""
    return x.index_select(-2, rows).index_select(-1, cols)


def select_pixels_backward(grad: Tensor, size: Pair, rows: Tensor, cols: Tensor) -> Tensor:
    """The adjoint of `select_pixels`: grad (…, len(rows), len(cols)) → (…, H, W) = size, each
    output's gradient added onto the pixel it copied (a pixel copied k times gets k terms, one
    never copied gets 0)."""
    h, w = size
    per_row = grad.new_zeros((*grad.shape[:-1], w)).index_add_(-1, cols, grad)
    return grad.new_zeros((*grad.shape[:-2], h, w)).index_add_(-2, rows, per_row)


def patches(xp: Tensor, out_size: Pair, kernel: Pair, stride: Pair, dilation: Pair) -> Tensor:
    """A strided view (N, H_out, W_out, C, kh, kw) of an already padded xp: (N, C, H, W); no copy."""
    n, c = xp.shape[:2]
    s_n, s_c, s_h, s_w = xp.stride()
    return xp.as_strided(
        (n, out_size[0], out_size[1], c, kernel[0], kernel[1]),
        (s_n, stride[0] * s_h, stride[1] * s_w, s_c, dilation[0] * s_h, dilation[1] * s_w),
        xp.storage_offset(),
    )


def tap_slices(kernel_tap: tuple[int, int], out_size: Pair, stride: Pair,
               dilation: Pair) -> tuple[slice, slice]:
    """The rows and columns of the padded input that kernel tap (u, v) meets, one per output pixel:
    s·i + d·u for i = 0 … H_out − 1 (likewise for columns)."""
    return tuple(  # type: ignore[return-value]
        slice(d * t, d * t + s * (o - 1) + 1, s)
        for t, o, s, d in zip(kernel_tap, out_size, stride, dilation))


def unfold(x: Tensor, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair) -> Tensor:
    """x: (N, C, H, W) → cols: (N, C·kh·kw, H_out·W_out), as torch.nn.functional.unfold.

    cols[n, (c, u, v), (i, j)] = x_pad[n, c, s_h·i + d_h·u, s_w·j + d_w·v], where x_pad is x with
    `padding` zeros on each side; rows are ordered (c, u, v), columns (i, j), both row-major.
    For a fixed kernel tap (u, v), the values over all output pixels form one strided slice of
    x_pad (`tap_slices`).
    """
    n, c, h, w = x.shape
    kh, kw = kernel
    out_size = (conv_output_size(h, kh, stride[0], padding[0], dilation[0]),
                conv_output_size(w, kw, stride[1], padding[1], dilation[1]))
    ### BEGIN SOLUTION
    xp = pad2d(x, padding)
    cols = x.new_empty((n, c, kh, kw, *out_size))
    for u in range(kh):
        for v in range(kw):
            rows, columns = tap_slices((u, v), out_size, stride, dilation)
            cols[:, :, u, v] = xp[:, :, rows, columns]
    return cols.reshape(n, c * kh * kw, out_size[0] * out_size[1])
    ### END SOLUTION


def fold(cols: Tensor, output_size: Pair, kernel: Pair, stride: Pair, padding: Pair,
         dilation: Pair) -> Tensor:
    """cols: (N, C·kh·kw, H_out·W_out) → (N, C, H, W), (H, W) = output_size, as
    torch.nn.functional.fold: the adjoint of `unfold`.

    Every entry cols[n, (c, u, v), (i, j)] is added onto x_pad[n, c, s_h·i + d_h·u, s_w·j + d_w·v]
    (pixels in several windows collect several entries); then the padding is cropped.
    """
    (h, w), (kh, kw) = output_size, kernel
    n = cols.shape[0]
    c = cols.shape[1] // (kh * kw)
    out_size = (conv_output_size(h, kh, stride[0], padding[0], dilation[0]),
                conv_output_size(w, kw, stride[1], padding[1], dilation[1]))
    if cols.dim() != 3 or cols.shape[1] != c * kh * kw or \
            cols.shape[2] != out_size[0] * out_size[1]:
        raise ValueError(f"fold: expected cols of shape (N, C·{kh}·{kw}, {out_size[0]}·"
                         f"{out_size[1]}) for output size {tuple(output_size)}, got "
                         f"{tuple(cols.shape)}")
    ### BEGIN SOLUTION
    blocks = cols.reshape(n, c, kh, kw, *out_size)
    xp = cols.new_zeros((n, c, h + 2 * padding[0], w + 2 * padding[1]))
    for u in range(kh):
        for v in range(kw):
            rows, columns = tap_slices((u, v), out_size, stride, dilation)
            xp[:, :, rows, columns] += blocks[:, :, u, v]
    return xp[:, :, padding[0]:padding[0] + h, padding[1]:padding[1] + w]
    ### END SOLUTION


def im2col(x: Tensor, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair,
           impl: str = "fast") -> Tensor:
    """x: (N, C, H, W) → cols: (N·H_out·W_out, C·kh·kw), each row ordered (C, kh, kw): `unfold`
    with one row per output pixel."""
    check_impl(impl)
    ### BEGIN FAST PATH
    if impl == "fast" and lever_on("strided_patches"):
        return im2col_strided(x, kernel, stride, padding, dilation)
    ### END FAST PATH
    c, (kh, kw) = x.shape[1], kernel
    cols = unfold(x, kernel, stride, padding, dilation)          # (N, C·kh·kw, H_out·W_out)
    return cols.transpose(1, 2).reshape(-1, c * kh * kw)


def col2im(cols: Tensor, input_shape: tuple[int, ...], kernel: Pair, stride: Pair,
           padding: Pair, dilation: Pair, impl: str = "fast") -> Tensor:
    """The adjoint of `im2col`: cols (N·H_out·W_out, C·kh·kw) → (N, C, H, W), overlaps summed:
    `fold` with one row per output pixel."""
    check_impl(impl)
    ### BEGIN FAST PATH
    if impl == "fast" and lever_on("strided_patches"):
        return col2im_strided(cols, input_shape, kernel, stride, padding, dilation)
    ### END FAST PATH
    n, c, h, w = input_shape
    kh, kw = kernel
    ho = conv_output_size(h, kh, stride[0], padding[0], dilation[0])
    wo = conv_output_size(w, kw, stride[1], padding[1], dilation[1])
    blocks = cols.reshape(n, ho * wo, c * kh * kw).transpose(1, 2)   # (N, C·kh·kw, H_out·W_out)
    return fold(blocks, (h, w), kernel, stride, padding, dilation)


### BEGIN FAST PATH
def im2col_strided(x: Tensor, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair,
                   channels_last: bool = False) -> Tensor:
    """`im2col` as one copy of a strided view of the padded input (`patches`). With
    `channels_last` each row is ordered (kh, kw, C) instead: from a channels-last x the copy then
    moves runs of kw·C contiguous values, not runs of kw."""
    c, h, w = x.shape[1:]
    kh, kw = kernel
    out_size = (conv_output_size(h, kh, stride[0], padding[0], dilation[0]),
                conv_output_size(w, kw, stride[1], padding[1], dilation[1]))
    layout = torch.channels_last if channels_last else torch.contiguous_format
    view = patches(pad2d(x, padding, memory_format=layout), out_size, kernel, stride, dilation)
    if channels_last:
        view = view.permute(0, 1, 2, 4, 5, 3)
    return view.reshape(-1, c * kh * kw)


def col2im_strided(cols: Tensor, input_shape: tuple[int, ...], kernel: Pair, stride: Pair,
                   padding: Pair, dilation: Pair, channels_last: bool = False) -> Tensor:
    """`col2im` as kh·kw strided additions into a view of the padded result, or one strided copy
    when the windows do not overlap. With `channels_last`, rows are ordered (kh, kw, C) and the
    result is channels-last in memory."""
    n, c, h, w = input_shape
    kh, kw = kernel
    ho = conv_output_size(h, kh, stride[0], padding[0], dilation[0])
    wo = conv_output_size(w, kw, stride[1], padding[1], dilation[1])
    if channels_last:
        blocks = cols.reshape(n, ho, wo, kh, kw, c).permute(0, 1, 2, 5, 3, 4)
    else:
        blocks = cols.reshape(n, ho, wo, c, kh, kw)
    hp, wp = h + 2 * padding[0], w + 2 * padding[1]
    layout = torch.channels_last if channels_last else torch.contiguous_format
    out = torch.empty((n, c, hp, wp), dtype=cols.dtype, device=cols.device, memory_format=layout)
    if not (dilation == (1, 1) and stride == kernel and ho * kh == hp and wo * kw == wp):
        out.zero_()                                               # some pixels are in no window
    target = patches(out, (ho, wo), kernel, stride, dilation)
    if windows_overlap(kernel, stride, dilation):
        for i in range(kh):
            for j in range(kw):
                target[:, :, :, :, i, j] += blocks[:, :, :, :, i, j]
    else:
        target.copy_(blocks)
    return out[:, :, padding[0]:padding[0] + h, padding[1]:padding[1] + w]


def windows_overlap(kernel: Pair, stride: Pair, dilation: Pair) -> bool:
    """Whether two neighbouring windows share an input pixel: stride < dilation·(kernel − 1) + 1."""
    return any(s < d * (k - 1) + 1 for k, s, d in zip(kernel, stride, dilation))


def tap_shifts(kernel: Pair, dilation: Pair, width: int) -> list[int]:
    """Row offset of each kernel tap (u, v), row-major, in a flattened image of `width` columns."""
    return [dilation[0] * u * width + dilation[1] * v
            for u in range(kernel[0]) for v in range(kernel[1])]


def shifted_conv(rows: Tensor, width: int, taps: Tensor, bias: Tensor | None,
                 dilation: Pair) -> Tensor:
    """A stride-1 convolution as `kh·kw` matrix products of row ranges, without a patch matrix.

    rows: (N·Hp·Wp, C_in), the padded input in channels-last order (Wp = width);
    taps: (kh, kw, C_in, C_out) → out: (N·Hp·Wp, C_out) with
    out[(n, i, j)] = Σ_{u,v} rows[(n, i + d_h·u, j + d_w·v)] · taps[u, v] + bias.
    Rows with i > Hp − 1 − d_h·(kh − 1) or j > Wp − 1 − d_w·(kw − 1) are not output pixels (their
    window wraps around the image's edge): ignore them.
    """
    kh, kw, _, c_out = taps.shape
    shifts = tap_shifts((kh, kw), dilation, width)
    m = rows.shape[0] - shifts[-1]
    flat = taps.reshape(kh * kw, -1, c_out)
    out = rows.new_empty((rows.shape[0], c_out))
    head = out[:m]
    if bias is None:
        torch.mm(rows[:m], flat[0], out=head)
    else:
        torch.addmm(bias, rows[:m], flat[0], out=head)
    for shift, tap in zip(shifts[1:], flat[1:]):
        head.addmm_(rows[shift:shift + m], tap)
    out[m:].zero_()
    return out


def shifted_conv_backward(grad: Tensor, rows: Tensor, width: int, taps: Tensor,
                          dilation: Pair) -> tuple[Tensor, Tensor]:
    """The adjoint of `shifted_conv`. grad: (N·Hp·Wp, C_out), zero on rows that are not output
    pixels → (grad_rows: (N·Hp·Wp, C_in), grad_taps: (kh, kw, C_in, C_out)).

    grad_taps[u, v] = rows[shifted]ᵀ · grad and grad_rows[shifted] += grad · taps[u, v]ᵀ.
    """
    kh, kw, c_in, c_out = taps.shape
    shifts = tap_shifts((kh, kw), dilation, width)
    m = rows.shape[0] - shifts[-1]
    g = grad[:m]
    flat = taps.reshape(kh * kw, c_in, c_out)
    grad_taps = taps.new_empty((kh * kw, c_in, c_out))
    grad_rows = rows.new_empty(rows.shape)
    torch.mm(g, flat[0].t(), out=grad_rows[:m])
    grad_rows[m:].zero_()
    torch.mm(rows[:m].t(), g, out=grad_taps[0])
    for k in range(1, kh * kw):
        shifted = slice(shifts[k], shifts[k] + m)
        grad_rows[shifted].addmm_(g, flat[k].t())
        torch.mm(rows[shifted].t(), g, out=grad_taps[k])
    return grad_rows, grad_taps.view(taps.shape)
### END FAST PATH


def grouped_matmul(a: Tensor, b: Tensor, groups: int, bias: Tensor | None = None) -> Tensor:
    """a: (M, g·K), b: (g, K, P) → (M, g·P): group `k` of the columns of `a` times `b[k]`,
    plus `bias` (g·P,) on every row."""
    if groups == 1:
        return a @ b[0] if bias is None else torch.addmm(bias, a, b[0])
    m = a.shape[0]
    a_g = a.reshape(m, groups, a.shape[1] // groups).transpose(0, 1)
    out = torch.bmm(a_g, b).transpose(0, 1).reshape(m, groups * b.shape[2])
    return out if bias is None else out.add_(bias)


def grouped_gram(a: Tensor, b: Tensor, groups: int) -> Tensor:
    """a: (M, g·P), b: (M, g·K) → (g, P, K): group `k` of `a`'s columns, transposed, times `b`'s."""
    if groups == 1:
        return (a.t() @ b).unsqueeze(0)
    a_g = a.reshape(a.shape[0], groups, a.shape[1] // groups).transpose(0, 1)
    b_g = b.reshape(b.shape[0], groups, b.shape[1] // groups).transpose(0, 1)
    return torch.bmm(a_g.transpose(1, 2), b_g)
