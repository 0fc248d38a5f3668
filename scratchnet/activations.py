"""Element-wise activations: ReLU, LeakyReLU, Sigmoid, Tanh. Any input shape; output has the same."""
from __future__ import annotations

import torch
from torch import Tensor

from .module import Module
from .validation import expect_grad

### BEGIN FAST PATH
from .grad_mode import is_grad_enabled
from .impl import lever_on
### END FAST PATH


class Activation(Module):
    """Shared plumbing: forward computes `y = f(x)`, backward returns `grad · f'(x)`.
    `impl = "reference"` selects the textbook formulas where a layer has a fast path."""

    def __init__(self) -> None:
        super().__init__()
        self.impl = "fast"

    def forward(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor):
            raise TypeError(f"{self._short_repr()}: expected a torch.Tensor, got {type(x).__name__}")
        y = self.function(x)
        self.save_for_backward(x=x, y=y)
        return y

    def backward(self, grad_output: Tensor) -> Tensor:
        saved = self.saved
        expect_grad(self, grad_output, tuple(saved["y"].shape))
        return grad_output * self.derivative(saved["x"], saved["y"])

    def function(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def derivative(self, x: Tensor, y: Tensor) -> Tensor:
        """f'(x), from the input x or the output y, whichever is cheaper and more accurate."""
        raise NotImplementedError


class ReLU(Activation):
    """max(0, x); derivative 1 where x > 0, else 0 (torch's convention at 0): sign(y), as y ≥ 0."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def function(self, x: Tensor) -> Tensor:
        ### BEGIN SOLUTION
        return x.clamp_(min=0) if self.inplace else x.clamp(min=0)
        ### END SOLUTION

    def derivative(self, x: Tensor, y: Tensor) -> Tensor:
        ### BEGIN SOLUTION
        return torch.sign(y)
        ### END SOLUTION

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class LeakyReLU(Activation):
    """x where x > 0, else negative_slope·x (any slope: negative, 0, or above 1).

    With inplace=True, as torch, forward overwrites x with y and returns x itself. The
    derivative, 1 where x > 0, else negative_slope, is then read from y, which is where x now
    points: for negative_slope ≥ 0, y > 0 exactly where x > 0. A negative slope flips the sign,
    so after an in-place forward the derivative is lost and backward refuses, as torch's does.
    """

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False) -> None:
        super().__init__()
        self.negative_slope = negative_slope
        self.inplace = inplace

    ### BEGIN FAST PATH
    def forward(self, x: Tensor) -> Tensor:
        """With the fast path, not in place, outside `no_grad` and in float32 or float64: the
        derivative first, then y = f'(x)·x, and only f'(x) kept, so that backward is one
        multiplication. (In half precision f'(x) would round the slope; torch's does not.)"""
        if not (self._fast() and not self.inplace and is_grad_enabled()
                and isinstance(x, Tensor) and x.dtype in (torch.float32, torch.float64)):
            return super().forward(x)
        slope = self._slopes(x)
        self.save_for_backward(slope=slope)
        return x * slope
    ### END FAST PATH

    def function(self, x: Tensor) -> Tensor:
        ### BEGIN FAST PATH
        if self._fast() and self.negative_slope == 0:     # max(x, 0·x) would make +inf NaN
            slope = self._slopes(x)
            return x.mul_(slope) if self.inplace else x * slope
        if self._fast():
            if self.inplace:
                return torch.maximum(x, x * self.negative_slope, out=x)
            return torch.maximum(x, x * self.negative_slope)
        ### END FAST PATH
        y = torch.where(x > 0, x, x * self.negative_slope)
        return x.copy_(y) if self.inplace else y

    def backward(self, grad_output: Tensor) -> Tensor:
        if self.inplace and self.negative_slope < 0:
            raise RuntimeError(
                f"{self._short_repr()}: backward after an in-place forward with a negative slope: "
                "x was overwritten and y no longer tells where x > 0 (torch refuses this too); "
                "use inplace=False")
        ### BEGIN FAST PATH
        saved = self.saved
        if "slope" in saved:
            expect_grad(self, grad_output, tuple(saved["slope"].shape))
            return grad_output * saved["slope"]
        if self._fast():
            y = saved["y"]
            expect_grad(self, grad_output, tuple(y.shape))
            return self._slopes(y).mul_(grad_output)
        ### END FAST PATH
        return super().backward(grad_output)

    ### BEGIN FAST PATH
    def _fast(self) -> bool:
        """Whether the fast path applies: 0 ≤ slope ≤ 1, so that f'(x) = max(sign(x), slope)
        = max(sign(y), slope) and f(x) = max(x, slope·x) = f'(x)·x (no `where`, which is slow
        on CPU). Training takes f'(x)·x: four kernels per forward and backward instead of five."""
        return self.impl == "fast" and lever_on("leaky_relu") and 0 <= self.negative_slope <= 1

    def _slopes(self, t: Tensor) -> Tensor:
        """max(sign(t), slope): f'(x) from x, or from y, which has x's sign where it matters."""
        return t.sign().clamp_(min=self.negative_slope)
    ### END FAST PATH

    def derivative(self, x: Tensor, y: Tensor) -> Tensor:
        return torch.where(x > 0, torch.ones_like(x), torch.full_like(x, self.negative_slope))

    def extra_repr(self) -> str:
        inplace = ", inplace=True" if self.inplace else ""
        return f"negative_slope={self.negative_slope}{inplace}"


class Sigmoid(Activation):
    """σ(x) = 1 / (1 + e^{−x}), evaluated without overflow: e^{−|x|} never exceeds 1.

    σ(x) = 1 / (1 + e^{−|x|}) for x ≥ 0 and e^{−|x|} / (1 + e^{−|x|}) for x < 0;
    σ'(x) = σ(x)·(1 − σ(x)), computed from the cached output.
    """

    def function(self, x: Tensor) -> Tensor:
        ### BEGIN FAST PATH
        if self.impl == "fast" and lever_on("sigmoid"):
            return torch.sigmoid(x)
        ### END FAST PATH
        ### BEGIN SOLUTION
        e = torch.exp(-x.abs())
        return torch.where(x >= 0, 1 / (1 + e), e / (1 + e))
        ### END SOLUTION

    def derivative(self, x: Tensor, y: Tensor) -> Tensor:
        ### BEGIN SOLUTION
        return y * (1 - y)
        ### END SOLUTION


class Tanh(Activation):
    """tanh(x); derivative 1 − tanh(x)², from the cached output."""

    def function(self, x: Tensor) -> Tensor:
        ### BEGIN SOLUTION
        return torch.tanh(x)
        ### END SOLUTION

    def derivative(self, x: Tensor, y: Tensor) -> Tensor:
        ### BEGIN SOLUTION
        return 1 - y * y
        ### END SOLUTION
