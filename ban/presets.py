"""Presets: complete params files in ``presets/`` for the paper's experiments and the README's studies.

A preset is an ordinary ``params.yaml``, comments included, so that it reads and diffs on its own and
``dvc exp run -S`` changes it like any other. Applying one validates it and copies it over
``params.yaml``. Its cost is computed without data or weights: every network is built on the meta
device, which gives its parameter count and, for images, its forward FLOPs; the dataset sizes are the
published ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from ban.config import Params, load_params
from ban.errors import ConfigError
from ban.nets import build_model, count_parameters

PRESETS = Path("presets")
# Sustained bf16 throughput assumed for one H100, per task: about a tenth of its peak for CIFAR
# networks, and a tenth of that for recurrent language models, whose time steps run one after the
# other at batch 20-32. Assumptions for estimates, not measurements.
ASSUMED_FLOPS_PER_S = {"image": 100e12, "lm": 10e12}


@dataclass(frozen=True)
class DataFacts:
    """What building and costing a network needs to know of a dataset, without reading it."""

    shape: tuple[int, ...]  # one example: C x H x W, or (tokens,) for one language-model window
    data_arguments: dict[str, Any]
    train_examples: int  # images or tokens
    eval_examples: int  # evaluated after every epoch


def data_facts(params: Params) -> DataFacts | None:
    """The published sizes of ``data.name``; None for the user's own text corpus."""
    name, subset = params.data.name, params.data.train_subset
    if name in ("cifar10", "cifar100", "imagefolder"):
        size = params.data.image_size or 32
        classes = 100 if name == "cifar100" else 10  # imagefolder: taken to be a CIFAR-10 export
        return DataFacts((3, size, size), {"in_channels": 3, "num_classes": classes}, subset or 50_000,
                         10_000)
    if name == "digits":
        return DataFacts((1, 8, 8), {"in_channels": 1, "num_classes": 10}, subset or 1_347, 450)
    if name == "ptb":  # Mikolov's PTB: 10k words; 51 character symbols, words of up to 19 letters
        word_chars = torch.zeros(10_000, 21, dtype=torch.int64)
        word_chars[:, 1] = 50
        return DataFacts((params.train.bptt,), {"vocab_size": 10_000, "word_chars": word_chars},
                         929_589, 73_760 + 82_430)
    return None


@dataclass(frozen=True)
class NetworkCost:
    generation: str
    arch: str
    parameters: int
    forward_flops: float  # per image or token


def preset_path(name: str) -> Path:
    path = PRESETS / f"{name}.yaml"
    if not path.exists():
        raise ConfigError(f"unknown preset {name!r}; known: {', '.join(preset_names())}")
    return path


def preset_names() -> list[str]:
    return sorted(path.stem for path in PRESETS.glob("*.yaml"))


def title(path: Path) -> str:
    """The first line of the preset, a comment that says what it runs."""
    first = next(iter(path.read_text().splitlines()), "")
    return first.lstrip("#").strip() if first.startswith("#") else ""


def apply_preset(name: str, target: Path) -> Params:
    """Validate preset ``name`` and copy it, byte for byte, over ``target``."""
    path = preset_path(name)
    params = load_params(path)
    target.write_bytes(path.read_bytes())
    return params


def network_costs(params: Params, count_flops: bool = True) -> list[NetworkCost]:
    """Every generation's parameter count and forward FLOPs (NaN unless ``count_flops``), from
    networks built on the meta device."""
    facts = data_facts(params)
    if facts is None:
        return []
    measured: dict[str, tuple[int, float]] = {}  # students usually repeat the teacher's network
    costs = []
    for name in params.generations():
        generation = params.generation(name)
        key = repr(sorted(generation.model.items()))
        if key not in measured:
            with torch.device("meta"):
                model = build_model(generation.arch, generation.options, **facts.data_arguments)
                flops = forward_flops(model, facts, params.task) if count_flops else math.nan
                measured[key] = count_parameters(model), flops
        costs.append(NetworkCost(name, generation.arch, *measured[key]))
    return costs


def forward_flops(model: torch.nn.Module, facts: DataFacts, task: str) -> float:
    """Counted on one meta image; for language models, 2 FLOPs per parameter and token (a matrix
    product per weight), since the recurrent layers are not counted on the meta device."""
    if task == "lm":
        return 2.0 * count_parameters(model)
    counter = FlopCounterMode(display=False)
    with counter:
        model.eval()(torch.empty(1, *facts.shape))
    return float(counter.get_total_flops())


def training_flops(params: Params, costs: list[NetworkCost]) -> float:
    """Forward and backward (3x forward) of every network, the frozen teacher's forward for each
    student, and the evaluation after every epoch."""
    facts = data_facts(params)
    if facts is None:
        return float("nan")
    by_name = {cost.generation: cost for cost in costs}
    total = 0.0
    for cost in costs:
        teacher = params.generation(cost.generation).teacher
        uses_teacher = teacher is not None and params.generation_kd(cost.generation).mode != "none"
        per_example = 3 * cost.forward_flops + (by_name[teacher].forward_flops if uses_teacher else 0)
        total += per_example * facts.train_examples + cost.forward_flops * facts.eval_examples
    return total * params.train.epochs


def gpu_hours(flops: float, task: str) -> float:
    """An estimate: ``flops`` at the :data:`ASSUMED_FLOPS_PER_S` of ``task``."""
    return flops / ASSUMED_FLOPS_PER_S[task] / 3600
