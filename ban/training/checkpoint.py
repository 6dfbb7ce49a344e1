"""A generation's network on disk: its weights with what is needed to rebuild it without params.yaml."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from ban.core.errors import CheckpointError
from ban.core.files import load_torch, save_torch

FORMAT = "ban-checkpoint-1"


def save_model(model: nn.Module, path: str | Path, *, generation: str, arch: str, options: dict[str, Any],
               data_signature: dict[str, Any]) -> None:
    """A generation's network with what is needed to rebuild it without params.yaml."""
    state = {k: v.detach().cpu() for k, v in unwrap(model).state_dict().items()}
    save_torch({"format": FORMAT, "generation": generation, "arch": arch, "options": options,
                "data": data_signature, "state_dict": state}, path)


def load_model(path: str | Path, made_by: str, data_signature: dict[str, Any], build: Any) -> nn.Module:
    """Rebuild a saved generation; refuse one made for other data or a different network."""
    saved = load_torch(path, "checkpoint", made_by)
    if not isinstance(saved, dict) or saved.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint {path} is not a born-again checkpoint; "
                              f"re-create it with {made_by}")
    if saved["data"] != data_signature:
        raise CheckpointError(f"checkpoint {path} was trained on other data ({saved['data']} vs "
                              f"{data_signature}); re-create it with {made_by}")
    model = build(saved["arch"], saved["options"])
    try:
        model.load_state_dict(saved["state_dict"])
    except RuntimeError as error:  # line 1 says "Error(s) in loading state_dict"; line 2 says which tensor
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        detail = (lines[1:] or lines or [error.__class__.__name__])[0]
        raise CheckpointError(f"checkpoint {path} does not fit architecture {saved['arch']!r} ({detail}); "
                              f"re-create it with {made_by}") from None
    return model


def unwrap(model: nn.Module) -> nn.Module:
    """The plain module inside DDP or torch.compile wrappers."""
    model = getattr(model, "module", model)
    return getattr(model, "_orig_mod", model)
