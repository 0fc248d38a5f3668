"""scratchnet: PyTorch's core rebuilt from plain tensor operations, with hand-written backward passes.

    import scratchnet as sn
    net = sn.Sequential(sn.Conv2d(3, 48, 2, stride=2), sn.ReLU(), ...)
    y = net(x); loss = crit(y, t); net.backward(crit.backward()); opt.step()
"""
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
from .module import Module
from .optim import SGD, Adam, Optimizer
from .pooling import MaxPool2d
from .upsampling import NearestUpsampling, Upsampling

__version__ = "0.1.0"

__all__ = [
    "Adam", "Concat", "Conv2d", "ConvTranspose2d", "Flatten", "GradcheckReport", "Identity", "LeakyReLU", "Linear",
    "MSE", "MSELoss", "MaxPool2d", "Module", "NearestUpsampling", "Optimizer", "ReLU", "Residual",
    "SGD", "Sequential", "Sigmoid", "Tanh", "TransposeConv2d", "Upsampling", "from_torch",
    "gradcheck", "no_grad", "psnr", "to_torch",
]
