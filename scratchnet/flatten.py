"""`Flatten`: merge dimensions start_dim … end_dim into one."""
from __future__ import annotations

from torch import Tensor

from .module import Module
from .validation import expect_grad, shape_str


class Flatten(Module):
    """x: (N, C, H, W) → (N, C·H·W) with the defaults start_dim=1, end_dim=−1."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor):
            raise TypeError(f"{self._short_repr()}: expected a torch.Tensor, got {type(x).__name__}")
        try:
            y = x.flatten(self.start_dim, self.end_dim)
        except (IndexError, RuntimeError):
            raise ValueError(f"{self._short_repr()}: cannot flatten an input of shape "
                             f"{shape_str(x.shape)}") from None
        self.save_for_backward(input_shape=tuple(x.shape), output_shape=tuple(y.shape))
        return y

    def backward(self, grad_output: Tensor) -> Tensor:
        saved = self.saved
        expect_grad(self, grad_output, saved["output_shape"])
        return grad_output.reshape(saved["input_shape"])

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
