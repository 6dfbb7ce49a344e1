"""A teacher's weights from outside the chain: a ``state_dict`` as public checkpoints ship it.

Read with ``weights_only=True`` (tensors and plain data; a pickle that needs code is refused unrun).
Accepted: a plain ``state_dict`` (torchvision's published weights), one wrapped in ``{"state_dict": ...}``
or ``{"model": ...}``, keys prefixed with ``module.`` by DataParallel/DDP, and this project's own
checkpoints. Every refusal is one line naming ``teacher.checkpoint``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ban.core.errors import CheckpointError
from ban.core.files import describe_load_error, read_torch
from ban.training.checkpoint import FORMAT

KEY = "teacher.checkpoint"
WRAPPERS = ("state_dict", "model")  # the keys repositories wrap a state_dict in
PREFIX = "module."  # DataParallel's and DDP's
SHOWN = 3  # key names quoted in an error


def read_weights(path: str | Path) -> tuple[dict[str, torch.Tensor], str]:
    """The state_dict the file at ``path`` holds, and which form it was found in (for the log)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{KEY}: {path} not found")
    try:
        saved = read_torch(path)
    except Exception as error:
        problem = describe_load_error(error)
        raise CheckpointError(f"{KEY}: {path} is not a weights file we can load: {problem}") from None
    state, form = _unwrap(saved)
    if not isinstance(state, Mapping) or not state or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()):
        raise CheckpointError(f"{KEY}: {path} holds {_describe(saved)}, not a state_dict (parameter names "
                              f"to tensors), nor one under {' or '.join(repr(w) for w in WRAPPERS)}")
    if all(key.startswith(PREFIX) for key in state):
        state = {key[len(PREFIX):]: value for key, value in state.items()}
        form += f", {PREFIX!r} prefix removed"
    return dict(state), form


def _unwrap(saved: Any) -> tuple[Any, str]:
    if isinstance(saved, Mapping) and saved.get("format") == FORMAT:
        return saved["state_dict"], f"a checkpoint of this project ({saved.get('generation')})"
    for wrapper in WRAPPERS:
        if isinstance(saved, Mapping) and isinstance(saved.get(wrapper), Mapping):
            return saved[wrapper], f"a state_dict under {wrapper!r}"
    return saved, "a plain state_dict"


def _describe(saved: Any) -> str:
    if isinstance(saved, Mapping):
        keys = [repr(key) for key in list(saved)[:SHOWN]]
        return f"a mapping of {', '.join(keys) or 'nothing'}{', ...' if len(saved) > SHOWN else ''}"
    return f"a {type(saved).__name__}"


def load_weights(model: nn.Module, state: Mapping[str, torch.Tensor], path: str | Path, arch: str,
                 data: str) -> None:
    """Load ``state`` into ``model`` (``arch`` built for the data, described by ``data``), refusing
    missing or unexpected keys and tensors of another shape with one line that says both sides."""
    expected = model.state_dict()
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    if missing or unexpected:
        found = (("missing", missing), ("unexpected", unexpected))
        parts = [f"{label} {_first(keys)}" for label, keys in found if keys]
        raise CheckpointError(f"{KEY}: {path} does not fit teacher.arch {arch!r}: {'; '.join(parts)}")
    for key, tensor in expected.items():
        if state[key].shape != tensor.shape:
            raise CheckpointError(
                f"{KEY}: {path} does not match the data: {key} is {list(state[key].shape)} in the file but "
                f"{list(tensor.shape)} in {arch!r} built for the data ({data})")
    model.load_state_dict(state)


def _first(keys: list[str]) -> str:
    more = f" (and {len(keys) - SHOWN} more)" if len(keys) > SHOWN else ""
    return ", ".join(keys[:SHOWN]) + more
