"""Choose the training device and numeric precision from ``train.device``/``train.precision``."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

import torch

from ban.core.errors import ConfigError

log = logging.getLogger(__name__)


def resolve_device(requested: str) -> torch.device:
    """``auto`` takes the best accelerator present; a missing one falls back to CPU with a log line."""
    available = {"cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available(), "cpu": True}
    if requested == "auto":
        requested = next(name for name in ("cuda", "mps", "cpu") if available[name])
    elif not available.get(requested, False):
        log.warning("train.device=%s is not available here: training on the CPU", requested)
        requested = "cpu"
    return torch.device(requested)


def cpu_has_fast_bf16() -> bool:
    """Whether bf16 autocast trains faster than fp32 on this CPU (``fast_bf16_cpu`` on /proc/cpuinfo)."""
    try:
        return fast_bf16_cpu(open("/proc/cpuinfo").read())
    except OSError:
        return False


def fast_bf16_cpu(cpuinfo: str) -> bool:
    """The measured rule (README, "Precision"): AMX, or an AMD CPU with AVX512-BF16; nothing else.

    The AVX512-BF16 flag alone does not say bf16 is fast: an Intel Xeon with it but without AMX
    trains about 1.5x slower in bf16 than in fp32, an AMD EPYC with it about 2x faster. Only the
    first processor's entry is read, so the same machine always resolves the same way.
    """
    fields: dict[str, str] = {}
    for line in cpuinfo.splitlines():
        if not line.strip():
            if fields:
                break  # the end of the first processor's entry
            continue
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    flags = set(fields.get("flags", "").split())
    return "amx_bf16" in flags or (fields.get("vendor_id") == "AuthenticAMD" and "avx512_bf16" in flags)


def resolve_precision(requested: str, device: torch.device) -> str:
    if requested != "auto":
        if requested == "bf16" and device.type == "mps":
            raise ConfigError("train.precision: bf16 autocast is not supported on mps; use fp32")
        return requested
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    if device.type == "cpu":
        return "bf16" if cpu_has_fast_bf16() else "fp32"
    return "fp32"


@contextlib.contextmanager
def autocast(device: torch.device, precision: str) -> Iterator[None]:
    if precision == "bf16":
        with torch.autocast(device.type, dtype=torch.bfloat16):
            yield
    else:
        yield


def configure_determinism(enabled: bool) -> None:
    """``train.deterministic``: bit-identical reruns on CUDA too, at a speed cost.

    The CPU is deterministic either way. On CUDA this forbids cuDNN's autotuner
    and nondeterministic kernels, and makes cuBLAS use fixed workspaces (the
    variable must be set before the first CUDA matrix product).
    """
    if not enabled:
        torch.backends.cudnn.benchmark = True  # batches keep one shape: let cuDNN time its kernels once
        return
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


@contextlib.contextmanager
def explain_refusals(precision: str) -> Iterator[None]:
    """One line instead of a traceback when the device refuses the settings: an operation that
    ``train.deterministic`` forbids, or a kernel this CPU has no version of in ``precision`` (oneDNN
    has no bf16 LSTM without AVX512-BF16 or AMX)."""
    try:
        yield
    except RuntimeError as error:
        text = str(error)
        operation, found, _ = text.partition(" does not have a deterministic implementation")
        if found:
            raise ConfigError(f"train.deterministic: the network uses {operation}, which has no "
                              "deterministic implementation on this device; set train.deterministic: false") \
                from None
        if text.startswith("could not create a primitive descriptor") and precision == "bf16":
            layer = text.split(" for the ", 1)[1].split(" primitive")[0] if " for the " in text else "a layer"
            raise ConfigError(f"train.precision: this CPU has no bf16 kernel for {layer}; use fp32 (or auto, "
                              "which picks bf16 only on CPUs with AVX512-BF16 or AMX)") from None
        raise


def device_label(device: torch.device) -> str:
    """The device type and its model (``cpu: AMD EPYC``), written beside each generation's numbers."""
    if device.type == "cuda":
        return f"cuda: {torch.cuda.get_device_name(device)}"
    try:
        lines = open("/proc/cpuinfo").read().splitlines()
    except OSError:
        return device.type
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return f"{device.type}: {names[0]}" if device.type == "cpu" and names else device.type
