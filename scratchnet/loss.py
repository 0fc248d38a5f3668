"""`MSELoss`: mean (or sum) of squared errors, and its gradient scaled the same way."""
from __future__ import annotations

from torch import Tensor

from .module import Module
from .validation import expect_grad, shape_str


class MSELoss(Module):
    """loss = reduce((pred − target)²); pred and target of the same shape (any).

    d loss / d pred = 2·(pred − target) / numel for 'mean', 2·(pred − target) for 'sum';
    with reduction='none' the loss has pred's shape and backward needs the upstream gradient.
    """

    def __init__(self, size_average: bool | str | None = None, reduce: bool | None = None,
                 reduction: str = "mean") -> None:
        """torch.nn.MSELoss's signature. Its deprecated size_average and reduce are refused; a
        string first argument is read as the reduction (`MSELoss("sum")`, which torch would
        read as size_average, a mean)."""
        super().__init__()
        if isinstance(size_average, str) and reduction == "mean":
            size_average, reduction = None, size_average
        if size_average is not None or reduce is not None:
            raise ValueError(f"MSELoss: size_average={size_average!r} and reduce={reduce!r} are "
                             "torch's deprecated arguments, not supported; use reduction='mean', "
                             "'sum' or 'none'")
        if reduction not in ("mean", "sum", "none"):
            raise ValueError(f"MSELoss: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
        self.reduction = reduction

    def forward(self, prediction: Tensor, target: Tensor) -> Tensor:
        if prediction.shape != target.shape:
            raise ValueError(f"{self._short_repr()}: prediction of shape "
                             f"{shape_str(prediction.shape)} and target of shape "
                             f"{shape_str(target.shape)} differ")
        ### BEGIN SOLUTION
        diff = prediction - target
        self.save_for_backward(diff=diff)
        squared = diff * diff
        if self.reduction == "none":
            return squared
        return squared.sum() if self.reduction == "sum" else squared.mean()
        ### END SOLUTION

    def backward(self, grad_output: Tensor | float = 1.0) -> Tensor:
        """grad_output: ∂L/∂loss, 1 for a scalar loss (a tensor shaped like pred for 'none')
        → ∂L/∂pred, shaped like pred."""
        if self.reduction == "none" and not isinstance(grad_output, Tensor):
            raise ValueError("MSELoss(reduction='none').backward needs the upstream gradient "
                             "of the loss tensor")
        ### BEGIN SOLUTION
        diff = self.saved["diff"]
        if self.reduction == "none":
            expect_grad(self, grad_output, tuple(diff.shape))
            return 2 * diff * grad_output
        if self.reduction == "sum" or diff.numel() == 0:       # an empty batch: an empty gradient
            return diff * (2.0 * grad_output)
        return diff * (2.0 / diff.numel() * grad_output)
        ### END SOLUTION

    def extra_repr(self) -> str:
        return "" if self.reduction == "mean" else f"reduction={self.reduction!r}"


MSE = MSELoss
