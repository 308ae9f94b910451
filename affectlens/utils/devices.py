"""Device requests checked against what the machine has, before any model is loaded.

``--device cuda`` on a machine without a GPU otherwise fails deep inside torch (a pinned-memory
error while reading weights, or a CUDA initialisation traceback). Checking the request up
front turns it into one line that says what the machine does have.
"""

from __future__ import annotations

import re

from affectlens.errors import AffectlensError

DEVICE_FORMS = "auto, cpu, cuda, cuda:N or mps"


def check_torch_device(name: str, option: str = "--device") -> str:
    """Return ``name`` (normalised) when torch can run on it here; else raise a one-line error."""
    device = (name or "").strip().lower()
    if not re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", device):
        raise AffectlensError(f"{option} '{name}': unknown device; use {DEVICE_FORMS}")
    if device in ("auto", "cpu"):
        return device
    try:
        import torch
    except ImportError:
        raise AffectlensError(f"{option} {device} needs PyTorch, which is not installed "
                              "(pip install 'affectlens[train]')") from None
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise AffectlensError(f"{option} {device}: no CUDA GPU is available on this machine; use --device cpu")
        index = int(device.partition(":")[2] or 0)
        count = torch.cuda.device_count()
        if index >= count:
            raise AffectlensError(f"{option} {device}: this machine has {count} CUDA GPU(s) (cuda:0 to "
                                  f"cuda:{count - 1})")
    if device == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise AffectlensError(f"{option} mps: Apple's Metal GPU is not available on this machine; use --device cpu")
    return device
