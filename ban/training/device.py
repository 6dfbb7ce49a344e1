"""Choose the training device and numeric precision from ``train.device``/``train.precision``."""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Iterator

import torch

from ban.core.errors import ConfigError, DataError

log = logging.getLogger(__name__)


def resolve_device(requested: str) -> torch.device:
    """``auto`` takes the best usable accelerator and logs which and why; an explicit accelerator that
    cannot train here stops the stage (exit 2) rather than falling back to the CPU without a word."""
    problems = {"cuda": cuda_problem, "mps": mps_problem}
    if requested == "auto":
        reasons = []
        for name in ("cuda", "mps"):
            problem = problems[name]()
            if problem is None:
                log.info("train.device auto: %s (%s)", name, describe_device(torch.device(name)))
                return torch.device(name)
            if name == "cuda" or torch.backends.mps.is_built():
                reasons.append(f"{name}: {problem}")
        log.info("train.device auto: cpu (%s)", "; ".join(reasons))
        return torch.device("cpu")
    problem = problems[requested]() if requested in problems else None
    if problem is not None:
        raise ConfigError(f"train.device: {requested} cannot train here: {problem}; "
                          "use train.device: cpu (or auto)")
    return torch.device(requested)


def cuda_problem() -> str | None:
    """Why CUDA cannot train here (no CUDA build, no driver, a driver too old, no device, an
    architecture this build has no kernels for), or None when a tensor operation on it works."""
    if torch.version.cuda is None:
        return f"this PyTorch ({torch.__version__}) is built without CUDA"
    try:
        torch.cuda.init()  # raises with the driver's own words: none found, too old
    except Exception as error:  # noqa: BLE001 - whatever CUDA says, it is the reason
        return first_line(error)
    if torch.cuda.device_count() == 0:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        return "no CUDA device is visible" + (f" (CUDA_VISIBLE_DEVICES={visible!r})" if visible else "")
    major, minor = torch.cuda.get_device_capability()
    if not runs_architecture(major, minor, torch.cuda.get_arch_list()):
        return (f"{torch.cuda.get_device_name()} is sm_{major}{minor}, which this PyTorch build has no "
                f"kernels for (it has {' '.join(torch.cuda.get_arch_list())})")
    try:
        (torch.ones(1, device="cuda") + 1).item()
    except Exception as error:  # noqa: BLE001
        return first_line(error)
    return None


def runs_architecture(major: int, minor: int, built: list[str]) -> bool:
    """Whether kernels built for ``built`` (``sm_80``, ``compute_90``...) run on compute capability
    ``major.minor``: a binary for the same major version and an equal or lower minor one, or PTX for
    an equal or lower version (compiled when first loaded)."""
    for entry in built:
        match = re.fullmatch(r"(sm|compute)_(\d+)(\d)[a-z]?", entry)
        if match is None:
            continue
        kind, built_major, built_minor = match[1], int(match[2]), int(match[3])
        if kind == "sm" and built_major == major and built_minor <= minor:
            return True
        if kind == "compute" and (built_major, built_minor) <= (major, minor):
            return True
    return False


def mps_problem() -> str | None:
    return None if torch.backends.mps.is_available() else "not available"


def first_line(error: Exception) -> str:
    """The first sentence of what CUDA said (the rest is a download link)."""
    text = (str(error).strip().splitlines() or [type(error).__name__])[0]
    return re.split(r"(?<=\.) ", text, maxsplit=1)[0].rstrip(".")


def describe_device(device: torch.device) -> str:
    """What the device is, for logs and the resume fingerprint: the GPU's model, architecture and
    software, since a state saved on one GPU does not continue bit for bit on another."""
    if device.type != "cuda":
        return device.type
    index = device.index if device.index is not None else torch.cuda.current_device()
    major, minor = torch.cuda.get_device_capability(index)
    return (f"{torch.cuda.get_device_name(index)}, sm_{major}{minor}, CUDA {torch.version.cuda}, "
            f"cuDNN {torch.backends.cudnn.version()}")


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
    if requested == "fp16" and device.type != "cuda":
        raise ConfigError(f"train.precision: fp16 (with loss scaling) is for CUDA devices, not "
                          f"{device.type}; use fp32 or bf16")
    if device.type == "cuda":
        return cuda_precision(requested, device)
    if requested != "auto":
        if requested == "bf16" and device.type == "mps":
            raise ConfigError("train.precision: bf16 autocast is not supported on mps; use fp32")
        return requested
    if device.type == "cpu":
        return "bf16" if cpu_has_fast_bf16() else "fp32"
    return "fp32"


def cuda_precision(requested: str, device: torch.device) -> str:
    """bf16 where the GPU computes it natively (Ampere and later); else fp16 with loss scaling on GPUs
    with tensor cores (Volta, Turing: fast, and the GradScaler keeps small gradients), else fp32.

    ``is_bf16_supported()`` alone also counts bf16 that PyTorch emulates, which would put a T4 on a
    slow path.
    """
    native_bf16 = torch.cuda.is_bf16_supported(including_emulation=False)
    if requested == "bf16" and not native_bf16:
        raise ConfigError(f"train.precision: {torch.cuda.get_device_name(device)} has no native bf16 "
                          "(PyTorch would emulate it, slowly); use fp16 (trained with loss scaling) or auto")
    if requested != "auto":
        return requested
    if native_bf16:
        return "bf16"
    return "fp16" if torch.cuda.get_device_capability(device) >= (7, 0) else "fp32"


AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@contextlib.contextmanager
def autocast(device: torch.device, precision: str) -> Iterator[None]:
    if precision in AUTOCAST_DTYPES:
        with torch.autocast(device.type, dtype=AUTOCAST_DTYPES[precision]):
            yield
    else:
        yield


def to_device(tensors: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """The prepared tensors on the training device, checked against its free memory before they move."""
    if device.type == "cuda":
        free, total = torch.cuda.mem_get_info(device)
        check_fits(sum(tensor.nbytes for tensor in tensors.values()), free, total, describe_device(device))
    return {name: tensor.to(device) for name, tensor in tensors.items()}


def check_fits(needed: int, free: int, total: int, device: str) -> None:
    """One line instead of an out-of-memory traceback halfway through moving the data."""
    if needed > free:
        raise DataError(f"the prepared data ({needed / 2**30:.2f} GiB) does not fit in the free memory of "
                        f"the GPU ({device}: {free / 2**30:.2f} GiB free of {total / 2**30:.2f} GiB); train "
                        "from the prepared files (data.storage: stream), on fewer examples "
                        "(data.train_subset), or on smaller images")


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
