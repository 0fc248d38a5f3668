"""`resolve_device`: the device a user asked for, checked before any work starts."""
from __future__ import annotations

import torch


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """'auto' → CUDA when available, else the CPU; anything else → torch.device(device), with a
    ValueError saying what to use instead when it is misspelt or not available here."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"unknown device {str(device)!r}: use cpu, cuda, cuda:1, mps, … or "
                         "auto") from None
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {str(device)!r} is not available: this torch "
                             f"({torch.__version__}) sees no CUDA GPU; use cpu (or auto)")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(f"device {str(device)!r} is not available: there are "
                             f"{torch.cuda.device_count()} CUDA device(s), cuda:0 … "
                             f"cuda:{torch.cuda.device_count() - 1}")
    if resolved.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {str(device)!r} is not available here; use cpu (or auto)")
    return resolved
