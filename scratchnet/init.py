"""Parameter initialisation as torch.nn.init does it: the same names, signatures, formulas and
random draws (the same numbers, bit for bit, for the same generator state). Notebook 03 derives them.

    sn.init.kaiming_normal_(layer.weight, nonlinearity="relu")   # He: Var(W) = 2/fan_in
    sn.init.xavier_uniform_(layer.weight)                        # Glorot: 2/(fan_in + fan_out)
    sn.init.zeros_(layer.bias)

Every layer's default (`reset_parameters`) is torch.nn's: `kaiming_uniform_(w, a=√5)`, which
amounts to Var(W) = 1/(3·fan_in), i.e. U(−1/√fan_in, 1/√fan_in), and a bias from the same range.
`xavier_normal_` and `kaiming_uniform_` are defined in `init_variants` and importable from here.
Fans follow torch: for a weight (out, in, *kernel), fan_in = in·prod(kernel) and
fan_out = out·prod(kernel).
"""
from __future__ import annotations

import math
import warnings

import torch
from torch import Tensor

__all__ = [
    "calculate_gain", "constant_", "kaiming_normal_", "kaiming_uniform_", "normal_", "ones_",
    "orthogonal_", "uniform_", "xavier_normal_", "xavier_uniform_", "zeros_",
]

LINEAR_FUNCTIONS = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
                    "conv_transpose2d", "conv_transpose3d")


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The factor torch multiplies an initialisation's standard deviation by for `nonlinearity`:
    1 for linear layers and the sigmoid, 5/3 for tanh, √2 for ReLU, √(2/(1 + slope²)) for
    LeakyReLU (`param`: the negative slope, default 0.01), 3/4 for SELU."""
    if nonlinearity in LINEAR_FUNCTIONS or nonlinearity == "sigmoid":
        return 1
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is None:
            negative_slope = 0.01
        elif not isinstance(param, bool) and isinstance(param, int) or isinstance(param, float):
            negative_slope = param                          # True/False are ints: refused
        else:
            raise ValueError(f"negative_slope {param} not a valid number")
        return math.sqrt(2.0 / (1 + negative_slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"Unsupported nonlinearity {nonlinearity}")


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0,
             generator: torch.Generator | None = None) -> Tensor:
    """Fill `tensor` in place with draws from U(a, b); return it."""
    with torch.no_grad():
        return tensor.uniform_(a, b, generator=generator)


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0,
            generator: torch.Generator | None = None) -> Tensor:
    """Fill `tensor` in place with draws from N(mean, std²); return it."""
    with torch.no_grad():
        return tensor.normal_(mean, std, generator=generator)


def constant_(tensor: Tensor, val: float) -> Tensor:
    """Fill `tensor` with `val`; return it."""
    with torch.no_grad():
        return tensor.fill_(val)


def ones_(tensor: Tensor) -> Tensor:
    """Fill `tensor` with 1; return it."""
    return constant_(tensor, 1.0)


def zeros_(tensor: Tensor) -> Tensor:
    """Fill `tensor` with 0; return it."""
    with torch.no_grad():
        return tensor.zero_()


def _calculate_fan_in_and_fan_out(tensor: Tensor) -> tuple[int, int]:
    """weight (out, in, *kernel) → (fan_in, fan_out) = (in·prod(kernel), out·prod(kernel)): how
    many inputs each output sums over, and how many outputs each input feeds (torch's names;
    for a ConvTranspose2d weight (in, out/groups, *kernel) torch keeps the same formula)."""
    if tensor.dim() < 2:
        raise ValueError(
            "Fan in and fan out can not be computed for tensor with fewer than 2 dimensions")
    receptive_field_size = 1
    for size in tensor.shape[2:]:
        receptive_field_size *= size
    return tensor.size(1) * receptive_field_size, tensor.size(0) * receptive_field_size


def _calculate_correct_fan(tensor: Tensor, mode: str) -> int:
    """fan_in (mode="fan_in": keeps the forward pass's variance) or fan_out ("fan_out": the
    backward pass's)."""
    mode = mode.lower()
    valid_modes = ["fan_in", "fan_out"]
    if mode not in valid_modes:
        raise ValueError(f"Mode {mode} not supported, please use one of {valid_modes}")
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode == "fan_in" else fan_out


def _empty(tensor: Tensor) -> bool:
    """torch's kaiming_* leave a tensor with a zero-size dimension alone, with a warning."""
    if 0 in tensor.shape:
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=3)
        return True
    return False


def xavier_uniform_(tensor: Tensor, gain: float = 1.0,
                    generator: torch.Generator | None = None) -> Tensor:
    """Glorot & Bengio (2010): U(−a, a) with std = gain·√(2/(fan_in + fan_out)) and a = √3·std
    (U(−a, a) has variance a²/3). Fills `tensor` in place and returns it.

    std is computed first and then multiplied by √3, torch's order, so that the bound — and with
    it every draw — is the same float as torch's. Use `uniform_` to draw, passing `generator`.
    """
    ### BEGIN SOLUTION
    fan_in, fan_out = _calculate_fan_in_and_fan_out(tensor)
    std = gain * math.sqrt(2.0 / float(fan_in + fan_out))
    a = math.sqrt(3.0) * std                     # the bound: U(−a, a) has variance a²/3 = std²
    return uniform_(tensor, -a, a, generator)
    ### END SOLUTION


def kaiming_normal_(tensor: Tensor, a: float = 0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu",
                    generator: torch.Generator | None = None) -> Tensor:
    """He et al. (2015): N(0, std²) with std = gain/√fan, where gain = calculate_gain(nonlinearity,
    a) (√2 for ReLU, and for the default "leaky_relu" with a = 0) and fan = fan_in
    (mode="fan_in": keeps the forward pass's variance) or fan_out ("fan_out": the backward's).
    A tensor with a zero-size dimension is returned untouched, with torch's warning
    (`_empty(tensor)` tests for it and warns). Use `_calculate_correct_fan`, `calculate_gain` and
    `normal_` (passing `generator`).
    """
    ### BEGIN SOLUTION
    if _empty(tensor):
        return tensor
    fan = _calculate_correct_fan(tensor, mode)
    gain = calculate_gain(nonlinearity, a)
    std = gain / math.sqrt(fan)              # Var(W) = gain²/fan: 2/fan_in for ReLU
    return normal_(tensor, 0, std, generator)
    ### END SOLUTION


# their siblings, xavier_normal_ and kaiming_uniform_ (the layers' default), live in
# init_variants.py; it imports the helpers above, hence this import below them
from .init_variants import kaiming_uniform_, xavier_normal_


def orthogonal_(tensor: Tensor, gain: float = 1,
                generator: torch.Generator | None = None) -> Tensor:
    """Saxe et al. (2013): a (semi-)orthogonal matrix times `gain`, from the QR decomposition of
    a standard normal (rows, cols) matrix (trailing dimensions flattened), signs fixed so that
    the result is uniformly distributed."""
    if tensor.dim() < 2:
        raise ValueError("Only tensors with 2 or more dimensions are supported")
    if tensor.numel() == 0:
        return tensor
    rows = tensor.size(0)
    cols = tensor.numel() // rows
    flattened = tensor.new_empty((rows, cols)).normal_(0, 1, generator=generator)
    if rows < cols:
        flattened.t_()
    q, r = torch.linalg.qr(flattened)
    q *= torch.diag(r, 0).sign()
    if rows < cols:
        q.t_()
    with torch.no_grad():
        tensor.view_as(q).copy_(q)
        tensor.mul_(gain)
    return tensor


# ---- the layers' default (torch.nn's reset_parameters) ----------------------------------------

def fan_in(weight: Tensor) -> int:
    """weight: (out, in, *kernel) → in·prod(kernel), torch's definition."""
    return _calculate_fan_in_and_fan_out(weight)[0]


def bias_uniform_(bias: Tensor, fan: int) -> Tensor:
    """U(−1/√fan_in, 1/√fan_in): torch.nn's default for biases."""
    bound = 1 / math.sqrt(fan) if fan > 0 else 0
    return uniform_(bias, -bound, bound)


def reset_parameters(weight: Tensor, bias: Tensor | None) -> None:
    """torch's reset_parameters for Linear and Conv: kaiming_uniform_(weight, a=√5), then the
    bias from U(−1/√fan_in, 1/√fan_in) — bit-identical to torch.nn for the same RNG state."""
    kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        bias_uniform_(bias, fan_in(weight))
