"""Containers: `Sequential` (a chain), `Residual` (x + f(x)), `Concat` (branches side by side)
and `Identity`. Backward runs the chain rule through them."""
from __future__ import annotations

from typing import Any, Iterator

import torch
from torch import Tensor

from .module import Module
from .validation import expect_grad


class Identity(Module):
    """x → x; the gradient passes through unchanged. As torch's, the constructor accepts any
    arguments and ignores them (so Identity can stand in for a layer without editing its call)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def forward(self, x: Tensor) -> Tensor:
        return x

    def backward(self, grad_output: Tensor) -> Tensor:
        return grad_output


class Sequential(Module):
    """f_n ∘ … ∘ f_1. Backward visits the modules in reverse: g ← f_i.backward(g)."""

    def __init__(self, *modules: Module) -> None:
        super().__init__()
        for module in modules:
            self.append(module)

    def append(self, module: Module) -> "Sequential":
        self.add_module(str(len(self._modules)), module)
        return self

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    @property
    def needs_input_grad(self) -> bool:
        """The first module's: its input is the chain's (True for an empty chain)."""
        first = next(iter(self), None)
        return True if first is None else first.needs_input_grad

    @needs_input_grad.setter
    def needs_input_grad(self, value: bool) -> None:
        first = next(iter(self), None)
        if first is None:
            raise ValueError("Sequential: an empty chain has no first module to skip the input "
                             "gradient of")
        first.needs_input_grad = value

    def __getitem__(self, index: int | slice) -> "Module":
        modules = list(self._modules.values())
        if isinstance(index, slice):
            return Sequential(*modules[index])
        return modules[index]

    def forward(self, x: Tensor) -> Tensor:
        ### BEGIN SOLUTION
        for module in self:
            x = module(x)
        ### END SOLUTION
        return x

    def backward(self, grad_output: Tensor) -> Tensor:
        """grad_output: ∂L/∂(last output) → ∂L/∂x, each module's backward called once."""
        ### BEGIN SOLUTION
        for module in reversed(list(self)):
            grad_output = module.backward(grad_output)
        ### END SOLUTION
        return grad_output


class Residual(Module):
    """x + f(x), f preserving the shape; backward: g + f.backward(g)."""

    def __init__(self, module: Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: Tensor) -> Tensor:
        fx = self.module(x)
        if fx.shape != x.shape:
            raise ValueError(f"Residual: the wrapped module maps {tuple(x.shape)} to "
                             f"{tuple(fx.shape)}; a residual branch must keep the shape")
        return x + fx

    def backward(self, grad_output: Tensor) -> Tensor:
        """grad_output: shaped like x → ∂L/∂x = grad_output + f.backward(grad_output)."""
        ### BEGIN SOLUTION
        return grad_output + self.module.backward(grad_output)
        ### END SOLUTION


class Concat(Module):
    """Runs every branch on the same input and concatenates the outputs along `dim` (channels).

    x: (N, C, H, W) → (N, C_1 + … + C_k, H, W). Backward splits the gradient into the branches'
    slices and sums what the branches return — x fans out, so its gradients add up.
    """

    def __init__(self, *branches: Module, dim: int = 1) -> None:
        super().__init__()
        if not branches:
            raise ValueError("Concat needs at least one branch")
        for i, branch in enumerate(branches):
            self.add_module(str(i), branch)
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        outputs = [branch(x) for branch in self.children()]
        shapes = [tuple(o.shape) for o in outputs]
        rest = {s[:self.dim] + s[self.dim + 1:] for s in shapes}
        if len(rest) != 1:
            raise ValueError(f"Concat: branch outputs {shapes} differ outside dim {self.dim}")
        y = torch.cat(outputs, self.dim)
        self.save_for_backward(sizes=[s[self.dim] for s in shapes], output_shape=tuple(y.shape))
        return y

    def backward(self, grad_output: Tensor) -> Tensor:
        """grad_output: (N, C_1 + … + C_k, H, W) → ∂L/∂x: the sum of the branches' input
        gradients, branch i receiving its own slice of grad_output along `dim`."""
        saved = self.saved
        expect_grad(self, grad_output, saved["output_shape"])
        ### BEGIN SOLUTION
        pieces = grad_output.split(saved["sizes"], self.dim)
        grad_input = None
        for branch, piece in zip(self.children(), pieces):
            g = branch.backward(piece)
            grad_input = g if grad_input is None else grad_input + g
        ### END SOLUTION
        return grad_input

    def extra_repr(self) -> str:
        return f"dim={self.dim}"
