"""torch references for the task tests: seeded random tensors and autograd's gradients."""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def randn(shape: tuple[int, ...], seed: int, dtype: torch.dtype = torch.float64) -> Tensor:
    """A standard normal tensor of `shape`, the same for the same `seed`."""
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def torch_grads(fn: Callable[..., Tensor], inputs: list[Tensor],
                upstream: Tensor) -> tuple[Tensor, list[Tensor]]:
    """fn(*inputs) and the gradients of ⟨fn(*inputs), upstream⟩ by torch autograd."""
    with torch.enable_grad():
        leaves = [t.detach().clone().requires_grad_(True) for t in inputs]
        out = fn(*leaves)
        out.backward(upstream)
    return out.detach(), [leaf.grad for leaf in leaves]
