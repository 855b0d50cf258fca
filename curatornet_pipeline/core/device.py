"""Which torch device to run on: one rule for embedding, training and VBPR."""

from __future__ import annotations

from typing import Literal

import torch

# The device settings a run configuration accepts (the launchpad offers exactly these).
DeviceSetting = Literal["auto", "cpu", "cuda"]


def resolve_device(device: str) -> torch.device:
    """'auto' -> cuda when available else cpu; an explicit 'cuda' without a GPU is an error, not a fallback."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as exc:
        raise ValueError(f"unknown device {device!r}; use 'auto', 'cpu' or 'cuda[:index]'") from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} was requested but no CUDA GPU is available; use 'auto' or 'cpu'")
    return resolved
