"""The course's pictures of its derivations, drawn from the package's own index code and modules.

Each function returns a small matplotlib Figure (closed, so a notebook shows it once, as the
cell's value). What each one draws comes from the code it explains: the chain rule from the
modules of a `Sequential`, overlap counts from `fold`/`unfold`, stamps from `tap_slices` and
`window` (via `scratchnet.explorer`), the zero-inserted input of the equivalent stride-1
convolution from `window` and `tap_slices`, the convolution matrix from `Conv2d` itself, block sums from
`nearest_upsample`, phase taps from `PhasePlan`, the U-Net from its module tree, timings from a
benchmark report.
"""
from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, Patch, Rectangle

from .activations import LeakyReLU, ReLU, Sigmoid, Tanh
from .containers import Concat, Identity, Residual, Sequential
from .conv import Conv2d
from .conv_transpose import ConvTranspose2d
from .explorer import Geometry, transposed_stamp
from .im2col import Pair, fold, pair, tap_slices, unfold, window
from .linear import Linear
from .module import Module
from .upsampling import PhasePlan, Upsampling, nearest_upsample, nearest_upsample_backward

SUB = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")

# the local derivative J of each layer type, as the chain-rule picture names it
LOCAL_DERIVATIVE = {
    Linear: "∂h/∂x = W\n(ḡ ↦ ḡ·W)",
    ReLU: "∂h/∂x = diag[x > 0]",
    LeakyReLU: "∂h/∂x = diag[1 or a]",
    Sigmoid: "∂h/∂x = diag[y(1 − y)]",
    Tanh: "∂h/∂x = diag[1 − y²]",
    Conv2d: "∂h/∂x = A (conv)\n(ḡ ↦ fold(ḡ·W))",
}


def _closed(fig: Figure) -> Figure:
    plt.close(fig)  # shown once, as the return value, not again by the inline backend
    return fig


def _shape(t: torch.Tensor) -> str:
    return "(" + ", ".join(map(str, t.shape)) + ")"


def chain_rule_figure(model: Sequential, x: torch.Tensor) -> Figure:
    """The chain rule through `model`, a Sequential: its modules as boxes, the values
    x = h₀ → h₁ → … flowing forward (top, with their shapes, from a real forward pass), the
    gradients ḡ flowing backward (bottom), and each module's local derivative named under it."""
    modules = list(model)
    shapes = [_shape(x)]
    h = x
    for m in modules:
        h = m(h)
        shapes.append(_shape(h))
    n = len(modules)
    fig, ax = plt.subplots(figsize=(2.3 * n + 1.6, 3.3))
    ax.set_xlim(-0.8, 2 * n + 0.8)
    ax.set_ylim(-2.3, 1.7)
    ax.axis("off")
    for k, m in enumerate(modules):
        cx = 2 * k + 1
        ax.add_patch(Rectangle((cx - 0.62, -0.35), 1.24, 0.7, fc="#dee8f5", ec="#3a6ea5", lw=1.5))
        ax.text(cx, 0, f"({k}) {type(m).__name__}", ha="center", va="center", fontsize=9,
                weight="bold")
        local = next((text for cls, text in LOCAL_DERIVATIVE.items() if isinstance(m, cls)),
                     "∂h/∂x = J")
        top = "y" if k == n - 1 else f"h{k + 1}".translate(SUB)
        bottom = "x" if k == 0 else f"h{k}".translate(SUB)
        ax.text(cx, -1.55, local.replace("h/∂x", f"{top}/∂{bottom}"),
                ha="center", va="top", fontsize=8, color="#555555")
    for k in range(n + 1):
        x0 = 2 * k
        name = f"h{k}".translate(SUB) if 0 < k < n else ("x" if k == 0 else "y")
        ax.text(x0, 1.05, f"{name}\n{shapes[k]}", ha="center", va="bottom", fontsize=8,
                color="#1f4e8c")
        ax.text(x0, -1.0, f"ḡ_{name}", ha="center", va="top", fontsize=9, color="#b22222")
        if k < n:       # forward arrow above, backward arrow below
            ax.add_patch(FancyArrowPatch((x0 + 0.05, 0.75), (x0 + 1.95, 0.75),
                                         arrowstyle="-|>", mutation_scale=12, color="#1f4e8c"))
            ax.add_patch(FancyArrowPatch((x0 + 1.95, -0.75), (x0 + 0.05, -0.75),
                                         arrowstyle="-|>", mutation_scale=12, color="#b22222"))
    ax.text(-0.7, 0.75, "forward", fontsize=8, color="#1f4e8c", ha="left", va="bottom")
    ax.text(-0.7, -0.72, "backward", fontsize=8, color="#b22222", ha="left", va="bottom")
    ax.set_title("Sequential: values flow forward, gradients flow back, ḡ_in = Jᵀ·ḡ_out "
                 "at every module", fontsize=10)
    return _closed(fig)


def overlap_counts(size: int, kernel: int, stride: int, padding: int,
                   dilation: int = 1) -> torch.Tensor:
    """fold(unfold(ones)) on the *padded* canvas, (H + 2P) × (H + 2P): how many windows contain
    each position, padding included (crop [P:P+H] to get fold's result)."""
    full = size + 2 * padding
    ones = torch.ones(1, 1, full, full, dtype=torch.float64)
    k, s, d, z = (kernel, kernel), (stride, stride), (dilation, dilation), (0, 0)
    return fold(unfold(ones, k, s, z, d), (full, full), k, s, z, d)[0, 0]


def overlap_figure(configs: Sequence[tuple[int, int, int, int]]) -> Figure:
    """Heat maps of overlap counts for each (size, kernel, stride, padding): the number in a cell
    is how many output pixels read it, i.e. how many gradient contributions fold adds there;
    the frame marks the input, the cells outside it are padding, cropped from ∂L/∂x."""
    fig, axes = plt.subplots(1, len(configs), figsize=(3.2 * len(configs), 3.4), squeeze=False)
    for ax, (size, kernel, stride, padding) in zip(axes[0], configs):
        counts = overlap_counts(size, kernel, stride, padding)
        ax.imshow(counts.numpy(), cmap="Blues", vmin=0, vmax=max(counts.max().item(), 1) * 1.3)
        full = counts.shape[0]
        for r in range(full):
            for c in range(full):
                inside = padding <= r < padding + size and padding <= c < padding + size
                ax.text(c, r, int(counts[r, c]), ha="center", va="center", fontsize=8,
                        color="black" if inside else "#999999")
        if padding:
            ax.add_patch(Rectangle((padding - 0.5, padding - 0.5), size, size, fill=False,
                                   ec="crimson", lw=2))
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"{size}×{size}, K={kernel}, S={stride}, P={padding}", fontsize=9)
        ax.set_xlabel("column (padding in grey)" if padding else "column")
        ax.set_ylabel("row")
    fig.suptitle("fold(unfold(ones)): windows per pixel = terms in ∂L/∂x", fontsize=10)
    fig.tight_layout()
    return _closed(fig)


def stamp_figure(g: Geometry, pixel: tuple[int, int]) -> Figure:
    """Transposed convolution as a scatter: input pixel `pixel` (left) stamps its kernel, tap
    (u, v) labelled w_uv, onto output position (S·i + D·u − P, S·j + D·v − P) (right; grey cells:
    positions the padding crops away). From `explorer.transposed_stamp`."""
    out, stamp = g.transposed_out(), transposed_stamp(g, pixel)
    lo = -g.padding
    hi = max(out, g.full() - g.padding)
    fig, (left, right) = plt.subplots(1, 2, figsize=(7.6, 3.8),
                                      gridspec_kw={"width_ratios": [g.size, hi - lo]})
    grid = np.zeros((g.size, g.size))
    grid[pixel] = 1
    left.imshow(grid, cmap="Reds", vmin=0, vmax=1.4)
    left.text(pixel[1], pixel[0], "x", ha="center", va="center", fontsize=10)
    left.set_title(f"input {g.size}×{g.size}, pixel {tuple(pixel)}", fontsize=9)
    canvas = np.full((hi - lo, hi - lo), 0.15)
    canvas[-lo:-lo + out, -lo:-lo + out] = 0
    for (u, v), ((r, c), kept) in stamp.items():
        canvas[r - lo, c - lo] = 0.55 if kept else 0.3
        right.text(c - lo, r - lo, f"w{u}{v}".translate(SUB), ha="center", va="center",
                   fontsize=8)
    right.imshow(canvas, cmap="Oranges", vmin=0, vmax=1)
    right.add_patch(Rectangle((-lo - 0.5, -lo - 0.5), out, out, fill=False, ec="crimson", lw=2))
    right.set_title(f"output {out}×{out} (frame); K={g.kernel}, S={g.stride}, P={g.padding}",
                    fontsize=9)
    for ax, n, first in ((left, g.size, 0), (right, hi - lo, lo)):
        ax.set_xticks(range(n), [str(first + k) for k in range(n)], fontsize=7)
        ax.set_yticks(range(n), [str(first + k) for k in range(n)], fontsize=7)
        ax.set_xlabel("column")
        ax.set_ylabel("row")
    fig.suptitle("One input pixel stamps x·w_uv at output (S·i + D·u − P, S·j + D·v − P)",
                 fontsize=10)
    fig.tight_layout()
    return _closed(fig)


def zero_insertion(x: torch.Tensor, kernel: int | Pair, stride: int | Pair, padding: int | Pair,
                   output_padding: int | Pair = 0, dilation: int | Pair = 1) -> torch.Tensor:
    """x: (N, C, H, W) → ẑ: (N, C, H_z, W_z), the input of the stride-1 convolution that equals
    ConvTranspose2d(kernel, stride, padding, output_padding, dilation) on x (Dumoulin & Visin):
    S − 1 zeros between neighbouring pixels, then D·(K − 1) − P zeros on each side (a crop where
    that is negative) and `output_padding` more at the bottom/right, per axis:
    H_z = (H − 1)·S + 1 + 2·(D·(K − 1) − P) + output_padding. Convolve ẑ with `flipped_kernel`
    of the layer's weight (stride 1, dilation D, no padding) to get the layer's output."""
    k, s, p, op, d = (pair(v, name) for v, name in (
        (kernel, "kernel"), (stride, "stride"), (padding, "padding"),
        (output_padding, "output_padding"), (dilation, "dilation")))
    n, c, h, w = x.shape
    spread = x.new_zeros((n, c, (h - 1) * s[0] + 1, (w - 1) * s[1] + 1))
    spread[:, :, ::s[0], ::s[1]] = x                                   # S − 1 zeros in between
    ring = [di * (ki - 1) - pi for ki, pi, di in zip(k, p, d)]
    size = (spread.shape[-2] + 2 * ring[0] + op[0], spread.shape[-1] + 2 * ring[1] + op[1])
    return window(spread, (-ring[0], -ring[1]), size)                 # zeros around, + op


def flipped_kernel(weight: torch.Tensor, groups: int = 1) -> torch.Tensor:
    """A ConvTranspose2d weight (C_in, C_out/g, K_h, K_w) → the Conv2d weight (C_out, C_in/g,
    K_h, K_w) of the equivalent stride-1 convolution on `zero_insertion`'s ẑ: per group, the
    in/out channel axes swapped and both spatial axes flipped, W'[o, c, u, v] = W[c, o,
    K_h − 1 − u, K_w − 1 − v]."""
    c_in, c_out_g, kh, kw = weight.shape
    per_group = weight.reshape(groups, c_in // groups, c_out_g, kh, kw).transpose(1, 2)
    return per_group.reshape(groups * c_out_g, c_in // groups, kh, kw).flip(2, 3)


def zero_insertion_window(g: Geometry, pixel: tuple[int, int],
                          ) -> dict[tuple[int, int], tuple[tuple[int, int], tuple[int, int] | None]]:
    """The window that output pixel (r, s) of the transposed convolution reads on ẑ, the
    zero-inserted, padded input (`zero_insertion`), as a stride-1 convolution with the flipped
    kernel: {tap (u, v) of the flipped kernel, which holds w[K − 1 − u, K − 1 − v]: (position in
    ẑ, the input pixel (i, j) there or None on a zero)}.

    The positions come from `tap_slices` (stride 1, dilation D); what lies there from
    `zero_insertion` of an image of pixel labels."""
    out = g.transposed_out()
    r, s = pixel
    if not (0 <= r < out and 0 <= s < out):
        raise ValueError(f"zero_insertion_window: output pixel {pixel} outside the "
                         f"{out}×{out} output")
    labels = torch.arange(1, g.size * g.size + 1, dtype=torch.float64).view(1, 1, g.size, g.size)
    canvas = zero_insertion(labels, g.kernel, g.stride, g.padding, g.output_padding,
                            g.dilation)[0, 0]
    positions = range(canvas.shape[0])
    reads = {}
    for u in range(g.kernel):
        for v in range(g.kernel):
            rows, cols = tap_slices((u, v), (out, out), (1, 1), (g.dilation,) * 2)
            where = (positions[rows][r], positions[cols][s])
            label = int(canvas[where])
            reads[(u, v)] = (where, divmod(label - 1, g.size) if label else None)
    return reads


def _indices(*values: int) -> str:
    """Subscript indices: ₁₂, or ₁,₁₂ once one of them has two digits."""
    glue = "," if max(values) > 9 else ""
    return glue.join(map(str, values)).translate(SUB)


def zero_insertion_figure(g: Geometry, pixel: tuple[int, int]) -> Figure:
    """The transposed convolution as a stride-1 convolution (Dumoulin & Visin): the input
    x (H × H) with S − 1 zeros inserted between its pixels and D·(K − 1) − P zeros around
    (`output_padding` more at the bottom/right), ẑ of H_z × H_z (left), the K × K window that
    output pixel `pixel` reads on it (frame), and the flipped kernel it is multiplied by (right);
    orange: the taps over input pixels, the only ones that add to y[pixel]. From
    `zero_insertion` and `zero_insertion_window`."""
    reads = zero_insertion_window(g, pixel)
    labels = torch.arange(1, g.size * g.size + 1, dtype=torch.float64).view(1, 1, g.size, g.size)
    canvas = zero_insertion(labels, g.kernel, g.stride, g.padding, g.output_padding,
                            g.dilation)[0, 0]
    spread = (g.size - 1) * g.stride + 1
    core = zero_insertion(torch.ones(1, 1, spread, spread, dtype=torch.float64), g.kernel, 1,
                          g.padding, g.output_padding, g.dilation)[0, 0] > 0
    n, k, ring = canvas.shape[0], g.kernel, g.dilation * (g.kernel - 1) - g.padding
    colours = {"pixel": (0.87, 0.91, 0.96), "zero": (1.0, 1.0, 1.0), "ring": (0.91, 0.91, 0.91),
               "extra": (0.78, 0.78, 0.78), "hit": (1.0, 0.63, 0.12), "miss": (1.0, 0.86, 0.68)}
    image = np.empty((n, n, 3))
    fig, (left, right) = plt.subplots(1, 2, figsize=(9.2, 5.6),
                                      gridspec_kw={"width_ratios": [n, max(k, 3)]})
    for a in range(n):
        for b in range(n):
            label = int(canvas[a, b])
            kind = "pixel" if label else "zero" if core[a, b] else \
                "extra" if max(a, b) >= n - g.output_padding else "ring"
            image[a, b] = colours[kind]
            text = f"x{_indices(*divmod(label - 1, g.size))}" if label else "0"
            left.text(b, a, text, ha="center", va="center", fontsize=8 if label else 6.5,
                      color="black" if label else "#9a9a9a")
    for (u, v), ((a, b), source) in reads.items():
        image[a, b] = colours["hit" if source else "miss"]
    left.imshow(image)
    rows = [a for (a, _), _ in reads.values()]
    cols = [b for (_, b), _ in reads.values()]
    left.add_patch(Rectangle((min(cols) - 0.5, min(rows) - 0.5), max(cols) - min(cols) + 1,
                             max(rows) - min(rows) + 1, fill=False, ec="crimson", lw=2.5))
    inside = np.argwhere(core.numpy())
    if len(inside):                                       # dashed: the zero-inserted input
        (r0, c0), (r1, c1) = inside.min(0), inside.max(0)
        left.add_patch(Rectangle((c0 - 0.5, r0 - 0.5), c1 - c0 + 1, r1 - r0 + 1, fill=False,
                                 ec="#3a6ea5", lw=1.3, ls="--"))
    ring_name = "K − 1 − P" if g.dilation == 1 else "D·(K − 1) − P"
    left.set_title(f"ẑ {n}×{n}: input {g.size}×{g.size}, S − 1 = {g.stride - 1} zeros between "
                   f"pixels,\n{ring_name} = {ring} around, output_padding = {g.output_padding} "
                   "at the bottom/right", fontsize=9)
    left.set_xlabel(f"column of ẑ;  frame: the window of output pixel {tuple(pixel)}, "
                    f"rows {min(rows)}…{max(rows)}, columns {min(cols)}…{max(cols)}", fontsize=8)
    left.set_ylabel("row of ẑ")
    kernel = np.empty((k, k, 3))
    for (u, v), (_, source) in reads.items():
        kernel[u, v] = colours["hit" if source else "miss"]
        right.text(v, u, f"w{_indices(k - 1 - u, k - 1 - v)}", ha="center", va="center",
                   fontsize=10)
    right.imshow(kernel)
    right.set_title(f"flipped kernel ({k}×{k}):\ntap (u, v) holds w[K−1−u, K−1−v]", fontsize=9)
    right.set_xlabel("v")
    right.set_ylabel("u")
    for ax, size in ((left, n), (right, k)):
        ax.set_xticks(range(size), [str(t) for t in range(size)], fontsize=7)
        ax.set_yticks(range(size), [str(t) for t in range(size)], fontsize=7)
        ax.set_xticks(np.arange(size + 1) - 0.5, minor=True)
        ax.set_yticks(np.arange(size + 1) - 0.5, minor=True)
        ax.grid(which="minor", color="#b0b0b0", lw=0.5)
        ax.tick_params(which="minor", length=0)
    terms = [f"x{_indices(*source)}·w{_indices(k - 1 - u, k - 1 - v)}"
             for (u, v), (_, source) in reads.items() if source]
    fig.suptitle("Transposed convolution = zero insertion + a stride-1 convolution with the "
                 f"flipped kernel (K={k}, S={g.stride}, P={g.padding})\n"
                 f"y{_indices(*pixel)} = {' + '.join(terms) or '0'}   (orange: the taps over "
                 "input pixels; light orange: over zeros)", fontsize=10)
    legend = [Patch(fc=colours["pixel"], ec="#888888", label="input pixel x[i, j]"),
              Patch(fc=colours["zero"], ec="#888888", label="inserted zero"),
              Patch(fc=colours["ring"], ec="#888888", label=f"padding {ring_name}"),
              Patch(fc=colours["extra"], ec="#888888", label="output_padding")]
    fig.legend(handles=legend, loc="lower center", ncol=4, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return _closed(fig)


def conv_matrix(size: int, kernel: int, stride: int, padding: int) -> torch.Tensor:
    """The matrix A of a one-channel Conv2d (no bias) on a size×size input, built column by
    column from the layer itself: column k is conv(e_k). Its weight holds the tap numbers
    1 … K², so entry A[(i, j), (r, c)] says which tap links input (r, c) to output (i, j)."""
    conv = Conv2d(1, 1, kernel, stride=stride, padding=padding, bias=False).double()
    conv.weight.copy_(torch.arange(1.0, kernel * kernel + 1).view(1, 1, kernel, kernel))
    basis = torch.eye(size * size, dtype=torch.float64).view(-1, 1, size, size)
    return conv(basis).reshape(size * size, -1).t()          # (H_out·W_out, H·W)


def sparsity_figure(size: int, kernel: int, stride: int, padding: int) -> Figure:
    """The sparsity pattern of a convolution's matrix A (one channel) beside Aᵀ, coloured by
    kernel tap: a row of A is the patch one output pixel reads; a column of A — a row of Aᵀ, the
    stamp of one input pixel — lists the output pixels that input pixel reaches."""
    a = conv_matrix(size, kernel, stride, padding)
    taps = kernel * kernel
    cmap = plt.get_cmap("tab10" if taps <= 10 else "tab20", taps).with_extremes(bad="white")
    fig, (left, right) = plt.subplots(1, 2, figsize=(8.4, 4.0),
                                      gridspec_kw={"width_ratios": [a.shape[1], a.shape[0]]})
    for ax, m, title, rows, cols in ((left, a, "A: conv, y = A·x", "output pixel (i, j)",
                                      "input pixel (r, c)"),
                                     (right, a.t(), "Aᵀ: transposed conv", "input pixel (r, c)",
                                      "output pixel (i, j)")):
        shown = np.ma.masked_equal(m.numpy(), 0)
        image = ax.imshow(shown, cmap=cmap, vmin=0.5, vmax=taps + 0.5, aspect="equal")
        ax.set_title(f"{title}  {tuple(m.shape)}", fontsize=9)
        ax.set_ylabel(rows)
        ax.set_xlabel(cols)
        ax.set_xticks([])
        ax.set_yticks([])
    bar = fig.colorbar(image, ax=[left, right], ticks=range(1, taps + 1), shrink=0.8)
    bar.set_ticklabels([f"w{t // kernel}{t % kernel}".translate(SUB) for t in range(taps)])
    bar.set_label("kernel tap")
    fig.suptitle(f"Convolution matrix, {size}×{size} input, K={kernel}, S={stride}, P={padding}"
                 " (white: zero)", fontsize=10)
    return _closed(fig)


def block_sum_figure(grad: torch.Tensor, scale: tuple[int, int]) -> Figure:
    """The backward of nearest upsampling: the gradient `grad` (2-D, s_h·H × s_w·W) coloured by
    the input pixel each entry came from (from `nearest_upsample` of the pixel numbers), and the
    block sums that make ∂L/∂x (right)."""
    sh, sw = scale
    h, w = grad.shape[0] // sh, grad.shape[1] // sw
    owner = nearest_upsample(torch.arange(float(h * w)).view(1, 1, h, w), scale)[0, 0]
    sums = nearest_upsample_backward(grad[None, None], scale)[0, 0]
    fig, (left, right) = plt.subplots(1, 2, figsize=(7.4, 2.9),
                                      gridspec_kw={"width_ratios": [grad.shape[1], w + 1]})
    cmap = plt.get_cmap("Pastel1", max(h * w, 2))
    left.imshow(owner.numpy(), cmap=cmap, vmin=-0.5, vmax=h * w - 0.5)
    for r in range(grad.shape[0]):
        for c in range(grad.shape[1]):
            left.text(c, r, f"{grad[r, c].item():g}", ha="center", va="center", fontsize=8)
    for r in range(1, h):
        left.axhline(r * sh - 0.5, color="black", lw=1.5)
    for c in range(1, w):
        left.axvline(c * sw - 0.5, color="black", lw=1.5)
    left.set_title(f"ḡ (upsampled, {grad.shape[0]}×{grad.shape[1]}): blocks of {sh}×{sw}",
                   fontsize=9)
    right.imshow(np.arange(h * w).reshape(h, w), cmap=cmap, vmin=-0.5, vmax=h * w - 0.5)
    for r in range(h):
        for c in range(w):
            right.text(c, r, f"{sums[r, c].item():g}", ha="center", va="center", fontsize=9,
                       weight="bold")
    right.set_title(f"∂L/∂x ({h}×{w}): block sums", fontsize=9)
    for ax in (left, right):
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel("column")
        ax.set_ylabel("row")
    fig.tight_layout()
    return _closed(fig)


def phase_taps_figure(plans: Sequence[PhasePlan], kernels: Sequence[int]) -> Figure:
    """For each plan (one axis of upsample + conv): a grid of output phase a (rows) × kernel tap t
    (columns); the cell names the input row i + δ that tap t of phase a reads, and taps with the
    same colour in a row are summed into one entry of the phase kernel (`PhasePlan.select`)."""
    fig, axes = plt.subplots(1, len(plans), figsize=(3.0 * len(plans) + 1, 2.6), squeeze=False)
    for ax, plan, kernel in zip(axes[0], plans, kernels):
        which = plan.select.argmax(1)                 # (scale, kernel): entry j of phase a's kernel
        offsets = which + torch.tensor(plan.lo).view(-1, 1)
        ax.imshow(offsets.numpy(), cmap="Set2", vmin=offsets.min().item() - 0.5,
                  vmax=offsets.min().item() + 7.5,
                  aspect="auto")
        for a in range(plan.scale):
            for t in range(kernel):
                ax.text(t, a, f"w{t}".translate(SUB) + f"\ni{int(offsets[a, t]):+d}",
                        ha="center", va="center", fontsize=8)
        ax.set_xticks(range(kernel))
        ax.set_yticks(range(plan.scale), [f"{plan.scale}i+{a}" for a in range(plan.scale)])
        ax.set_xlabel("kernel tap t")
        ax.set_ylabel("output row (phase)")
        ax.set_title(f"s={plan.scale}, K={kernel}: {plan.taps} taps per phase", fontsize=9)
    fig.suptitle("Which input row each kernel tap reads, per output phase (same colour: summed)",
                 fontsize=10)
    fig.tight_layout()
    return _closed(fig)


def _leaf_label(m: Module) -> str:
    if isinstance(m, Upsampling):
        k = m.kernel_size
        return f"up ×{m.scale_factor[0]}\nconv {k[0]}×{k[1]}\n{m.in_channels}→{m.out_channels}"
    if isinstance(m, ConvTranspose2d):
        return f"convT {m.kernel_size[0]}\n{m.in_channels}→{m.out_channels}"
    if isinstance(m, Conv2d):
        k, s = m.kernel_size, m.stride[0]
        return f"conv {k[0]}×{k[1]}" + (f" /{s}" if s > 1 else "") + \
            f"\n{m.in_channels}→{m.out_channels}"
    return type(m).__name__


def unet_diagram(model: Module, size: int = 32) -> Figure:
    """The U-Net (or any net of Sequential / Concat / Residual and layers) drawn from its module
    tree: each convolution-like layer a box in the row of its resolution, labelled with the size
    (a stride-2 convolution steps down, an Upsampling steps up), activations folded into the box before them, and every
    `Concat(Identity(), …)` a skip arrow across; feature sizes from a real forward pass."""
    nodes: list[tuple[float, int, str]] = []        # (x, level, label)
    skips: list[tuple[float, float, int]] = []       # (x from, x to, level)
    position = [0.0]

    def walk(m: Module, x: torch.Tensor, level: int) -> tuple[torch.Tensor, int]:
        if isinstance(m, Sequential):
            for child in m:
                x, level = walk(child, x, level)
            return x, level
        if isinstance(m, Concat):
            start = position[0]
            outs = []
            for branch in m.children():
                if isinstance(branch, Identity):
                    outs.append(branch(x))
                    continue
                y, _ = walk(branch, x, level)
                outs.append(y)
            y = torch.cat(outs, dim=m.dim)
            position[0] += 1
            nodes.append((position[0], level, f"concat\n{y.shape[1]} ch"))
            skips.append((start, position[0], level))
            return y, level
        if isinstance(m, Residual):
            start = position[0]
            y, _ = walk(m.module, x, level)
            position[0] += 1
            nodes.append((position[0], level, "add"))
            skips.append((start, position[0], level))
            return x + y, level
        y = m(x)
        if isinstance(m, (Conv2d, ConvTranspose2d, Upsampling)):
            stepped = level + (1 if y.shape[-1] < x.shape[-1] else -1 if y.shape[-1] > x.shape[-1]
                               else 0)
            position[0] += 1
            nodes.append((position[0], stepped, _leaf_label(m) + f"\n{y.shape[-2]}×{y.shape[-1]}"))
            return y, stepped
        if nodes and isinstance(m, (LeakyReLU, ReLU, Sigmoid, Tanh)):
            xpos, lvl, label = nodes[-1]
            act = {LeakyReLU: "lrelu", ReLU: "relu", Sigmoid: "sigmoid", Tanh: "tanh"}[type(m)]
            nodes[-1] = (xpos, lvl, label + f"\n+ {act}")
        return y, level

    with torch.no_grad():
        walk(model, torch.zeros(1, 3, size, size), 0)
    depth = max(level for _, level, _ in nodes)
    width = position[0] + 1
    fig, ax = plt.subplots(figsize=(min(0.95 * width + 1, 16), 1.25 * (depth + 1) + 1.4))
    ax.set_xlim(0, width)
    ax.set_ylim(-depth - 0.6, 0.75)
    ax.axis("off")
    for start, end, level in skips:
        ax.add_patch(FancyArrowPatch((start + 0.3, -level + 0.42), (end - 0.3, -level + 0.42),
                                     connectionstyle="arc3,rad=-0.12", arrowstyle="-|>",
                                     mutation_scale=12, color="#2a9d8f", lw=1.6))
    previous = (0.0, 0)
    ax.text(0, 0, f"image\n3×{size}×{size}", ha="center", va="center", fontsize=7)
    for xpos, level, label in nodes:
        ax.plot([previous[0], xpos], [-previous[1], -level], color="#888888", lw=1, zorder=0)
        colour = "#f4d58d" if label.startswith(("concat", "add")) else \
            "#cde1f5" if "up ×" in label else "#e9e9e9"
        ax.text(xpos, -level, label, ha="center", va="center", fontsize=6.5,
                bbox={"boxstyle": "round,pad=0.3", "fc": colour, "ec": "#555555"})
        previous = (xpos, level)
    for level in range(depth + 1):
        ax.text(width - 0.1, -level, f"{size >> level}×{size >> level}", ha="right", va="center",
                fontsize=8, color="#777777")
    ax.set_title("U-Net from its module tree: down by stride-2 convolutions, up by Upsampling; "
                 "green arrows: skip connections (Concat)", fontsize=9)
    return _closed(fig)


def layer_timings_figure(layers: Sequence[tuple[str, float, float, float, float]],
                         title: str) -> Figure:
    """A horizontal bar chart of per-layer times, ms: `layers` as in a benchmark
    `ModelReport.layers`, (name, scratchnet forward, torch forward, scratchnet backward, torch
    backward) in seconds."""
    names = [row[0] for row in layers]
    y = np.arange(len(layers))
    fig, ax = plt.subplots(figsize=(7.2, 0.42 * len(layers) + 1.4))
    h = 0.2
    series = [("scratchnet forward", 1, "#9ecae1"), ("torch forward", 2, "#fdae6b"),
              ("scratchnet backward", 3, "#3182bd"), ("torch backward", 4, "#e6550d")]
    for k, (label, column, colour) in enumerate(series):
        ax.barh(y + (k - 1.5) * h, [row[column] * 1e3 for row in layers], h, label=label,
                color=colour)
    ax.set_yticks(y, names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("time per call (ms)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return _closed(fig)
