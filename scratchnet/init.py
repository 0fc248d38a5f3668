"""Parameter initialisation exactly as torch.nn does it (same formula, same random draws)."""
from __future__ import annotations

import math

from torch import Tensor


def fan_in(weight: Tensor) -> int:
    """weight: (out, in, *kernel) → in·prod(kernel), torch's definition."""
    receptive = 1
    for size in weight.shape[2:]:
        receptive *= size
    return weight.shape[1] * receptive


def kaiming_uniform_(weight: Tensor, a: float = math.sqrt(5)) -> Tensor:
    """U(−b, b) with b = √3·gain/√fan_in, gain = √(2 / (1 + a²)): torch.nn's default for weights.

    Evaluated in torch's order (std = gain/√fan_in, then √3·std) so the bound, and hence every
    float64 draw, is bit-identical; an empty tensor is left alone, as torch does.
    """
    if weight.numel() == 0:
        return weight
    gain = math.sqrt(2.0 / (1 + a * a))
    std = gain / math.sqrt(fan_in(weight))
    bound = math.sqrt(3.0) * std
    return weight.uniform_(-bound, bound)


def bias_uniform_(bias: Tensor, fan: int) -> Tensor:
    """U(−1/√fan_in, 1/√fan_in): torch.nn's default for biases."""
    bound = 1 / math.sqrt(fan) if fan > 0 else 0
    return bias.uniform_(-bound, bound)


def reset_parameters(weight: Tensor, bias: Tensor | None) -> None:
    """torch's reset_parameters for Linear and Conv: kaiming-uniform(a=√5) weight, then the bias."""
    kaiming_uniform_(weight)
    if bias is not None:
        bias_uniform_(bias, fan_in(weight))
