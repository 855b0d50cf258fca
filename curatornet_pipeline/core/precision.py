"""Numeric precision of the model forward passes: bf16 autocast where the hardware runs it natively, else fp32.

One rule for CuratorNet training, VBPR training and inference (item vectors, user vectors, recommendations):

* ``"fp32"`` — plain float32 everywhere.
* ``"bf16"`` — the forward passes run under ``torch.autocast(device, dtype=torch.bfloat16)``: matrix
  products in bfloat16, their outputs cast back to float32 by the callers (see ``CuratorNet``), so pooling,
  scores, the loss, gradients' accumulation into the float32 weights and the optimizer stay float32.
* ``"auto"`` (the default) — ``CURATORNET_PRECISION`` when set (``fp32`` or ``bf16``), else ``bf16`` on a
  CUDA GPU that supports it or on a CPU with native bf16 instructions (AVX512-BF16 or AMX-BF16), else fp32.
  On a CPU without them bf16 is emulated and slower than fp32, so auto never picks it there.

Both precisions are deterministic on CPU for a given seed; they are not bit-identical to each other.
"""

from __future__ import annotations

import contextlib
import functools
import os
from pathlib import Path
from typing import ContextManager, Literal, get_args

import torch

# The precision settings a run configuration accepts (the launchpad offers exactly these).
PrecisionSetting = Literal["auto", "fp32", "bf16"]
PRECISIONS = get_args(PrecisionSetting)
PRECISION_ENV = "CURATORNET_PRECISION"
_CPU_BF16_FLAGS = {"avx512_bf16", "amx_bf16"}


def check_precision(precision: str) -> str:
    """Return ``precision`` if it is a known setting, else raise ValueError naming the choices."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    return precision


@functools.lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """True when this CPU executes bf16 matrix products natively (AVX512-BF16 or AMX-BF16)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("flags"):
                return bool(_CPU_BF16_FLAGS & set(line.split(":", 1)[1].split()))
    # No /proc (macOS, Windows): oneDNN's own check, which also accepts emulation-free ISAs only.
    checker = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    return bool(checker()) if checker is not None else False


def resolve_precision(precision: str, device: torch.device) -> str:
    """'fp32' or 'bf16' for a setting and the device the work runs on (see module docstring)."""
    check_precision(precision)
    if precision == "auto":
        from_env = os.environ.get(PRECISION_ENV, "").strip().lower()
        if from_env:
            if from_env not in ("fp32", "bf16"):
                raise ValueError(f"{PRECISION_ENV}={from_env!r} is not a precision; use fp32 or bf16")
            precision = from_env
        elif device.type == "cuda":
            precision = "bf16" if torch.cuda.is_bf16_supported() else "fp32"
        else:
            precision = "bf16" if device.type == "cpu" and cpu_has_native_bf16() else "fp32"
    return precision


def autocast(precision: str, device: torch.device) -> ContextManager:
    """The context a forward pass runs in: bf16 autocast for a resolved 'bf16', nothing for 'fp32'."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    if precision == "fp32":
        return contextlib.nullcontext()
    raise ValueError(f"autocast needs a resolved precision ('fp32' or 'bf16'), got {precision!r}")
