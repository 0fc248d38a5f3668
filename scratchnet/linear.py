"""`Linear`: y = x·Wᵀ + b over the last dimension."""
from __future__ import annotations

import torch
from torch import Tensor

from .init import reset_parameters
from .module import Module
from .validation import expect_grad, expect_input, shape_str


class Linear(Module):
    """x: (*, in_features) → (*, out_features); weight: (out, in), bias: (out,).

    Backward, with X and G the inputs and upstream gradients as (rows, features) matrices:
    dW = Gᵀ·X, db = Σ_rows G, dx = G·W. Gradients are added to `p.grad` with `accumulate_grad`.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        factory = {"device": device, "dtype": dtype}
        self.register_parameter("weight", torch.empty(out_features, in_features, **factory))
        self.register_parameter("bias", torch.empty(out_features, **factory) if bias else None)
        reset_parameters(self.weight, self.bias)

    def forward(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor) or x.dim() < 1 or x.shape[-1] != self.in_features:
            shape = shape_str(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"{self._short_repr()}: expected input of shape (*, "
                             f"{self.in_features}), got {shape}")
        expect_input(self, x, None)
        ### BEGIN SOLUTION
        y = x @ self.weight.T
        if self.bias is not None:
            y = y + self.bias
        self.save_for_backward(x=x, output_shape=tuple(y.shape))
        return y
        ### END SOLUTION

    def backward(self, grad_output: Tensor) -> Tensor:
        ### BEGIN SOLUTION
        saved = self.saved
        expect_grad(self, grad_output, saved["output_shape"])
        g = grad_output.reshape(-1, self.out_features)
        self.accumulate_grad("weight", g.T @ saved["x"].reshape(-1, self.in_features))
        if self.bias is not None:
            self.accumulate_grad("bias", g.sum(0))
        return grad_output @ self.weight
        ### END SOLUTION

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")
