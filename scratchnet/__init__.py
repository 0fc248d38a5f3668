"""scratchnet: PyTorch's core rebuilt from plain tensor operations, with hand-written backward passes.

    import scratchnet as sn
    net = sn.Sequential(sn.Conv2d(3, 48, 2, stride=2), sn.ReLU(), ...)
    y = net(x); loss = crit(y, t); net.backward(crit.backward()); opt.step()
"""
from . import init
from .activations import LeakyReLU, ReLU, Sigmoid, Tanh
from .containers import Concat, Identity, Residual, Sequential
from .conv import Conv2d
from .conv_transpose import ConvTranspose2d, TransposeConv2d
from .flatten import Flatten
from .grad_mode import no_grad
from .gradcheck import GradcheckReport, gradcheck
from .interop import from_torch, to_torch
from .linear import Linear
from .loss import MSE, MSELoss
from .metrics import psnr
from .models import MODELS, build_model
from .module import Module
from .optim import SGD, Adam, AdamW, Optimizer, lr_scheduler
from .pooling import MaxPool2d
from .unpooling import MaxUnpool2d
from .upsampling import NearestUpsampling, Upsampling

__version__ = "0.1.0"

_LAZY = {"Model": "course", "fit": "train", "History": "train", "TrainingDiverged": "train"}


def __getattr__(name: str):
    """Model, fit, History, TrainingDiverged: imported on first use (keeps the import light)."""
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'scratchnet' has no attribute {name!r}")


__all__ = [
    "Adam", "AdamW", "Concat", "Conv2d", "ConvTranspose2d", "Flatten", "GradcheckReport",
    "History", "Identity", "LeakyReLU", "Linear", "MODELS", "MSE", "MSELoss", "MaxPool2d",
    "MaxUnpool2d", "Model", "Module", "NearestUpsampling", "Optimizer", "ReLU", "Residual",
    "SGD", "Sequential", "Sigmoid", "Tanh", "TrainingDiverged", "TransposeConv2d",
    "Upsampling", "build_model", "fit", "from_torch", "gradcheck", "init", "lr_scheduler",
    "no_grad", "psnr", "to_torch",
]
