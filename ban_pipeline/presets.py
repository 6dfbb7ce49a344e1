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

import torch
from torch.utils.flop_counter import FlopCounterMode

from ban.core.config import Params, load_params
from ban.core.errors import ConfigError
from ban.datasets import DataFacts, dataset_of
from ban.nets import build_model, count_parameters
from ban.objectives import learns_from_teacher
from ban.tasks import TASKS, Task
from ban.validation.params_file import validate_everything

PRESETS = Path("presets")


def data_facts(params: Params) -> DataFacts | None:
    """The published sizes of ``data.name``; None for the user's own text corpus."""
    return dataset_of(params.data).facts(params)


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


def load_preset(path: Path) -> Params:
    """A preset's params, checked as every stage of its chain would check them."""
    params = load_params(path)
    validate_everything(params)
    return params


def apply_preset(name: str, target: Path) -> Params:
    """Validate preset ``name`` and copy it, byte for byte, over ``target``."""
    path = preset_path(name)
    params = load_preset(path)
    target.write_bytes(path.read_bytes())
    return params


def task_of(params: Params) -> Task:
    return TASKS.get(dataset_of(params.data).task, "task")


def network_costs(params: Params, count_flops: bool = True) -> list[NetworkCost]:
    """Every generation's parameter count and forward FLOPs (NaN unless ``count_flops``), from
    networks built on the meta device."""
    facts = data_facts(params)
    if facts is None:
        return []
    costs = []
    for name in params.generations():
        generation = params.generation(name)
        key = (repr(sorted(generation.model.items())), facts.shape,
               repr(sorted(facts.data_arguments.items())), count_flops)
        if key not in _MEASURED:
            with torch.device("meta"):
                model = build_model(generation.arch, generation.options, **facts.data_arguments)
                flops = forward_flops(model, facts, task_of(params)) if count_flops else math.nan
                _MEASURED[key] = count_parameters(model), flops
        costs.append(NetworkCost(name, generation.arch, *_MEASURED[key]))
    return costs


# (network, example shape, data arguments, FLOPs counted) -> (parameters, forward FLOPs): students
# repeat their teacher's network, and a table's runs each other's
_MEASURED: dict[tuple[str, tuple[int, ...], str, bool], tuple[int, float]] = {}


def forward_flops(model: torch.nn.Module, facts: DataFacts, task: Task) -> float:
    """Counted on one meta example; where the meta device cannot count them (recurrent layers),
    2 FLOPs per parameter and example (a matrix product per weight)."""
    if not task.counts_flops:
        return 2.0 * count_parameters(model)
    counter = FlopCounterMode(display=False)
    with counter:
        model.eval()(torch.empty(1, *facts.shape))
    return float(counter.get_total_flops())


def training_flops(params: Params, costs: list[NetworkCost]) -> float:
    """Forward and backward (3x forward) of every network, the frozen teacher's forward for each
    student, and the evaluations (every ``train.eval_every`` epochs and after the last)."""
    facts = data_facts(params)
    if facts is None:
        return float("nan")
    by_name = {cost.generation: cost for cost in costs}
    total = 0.0
    for cost in costs:
        generation = params.generation(cost.generation)
        teacher_flops = by_name[generation.teacher].forward_flops if learns_from_teacher(generation) else 0
        per_example = 3 * cost.forward_flops + teacher_flops
        total += per_example * facts.train_examples * params.train.epochs
        evaluations = math.ceil(params.train.epochs / params.train.eval_every)
        total += cost.forward_flops * facts.eval_examples * evaluations
    return total


def gpu_hours(flops: float, task: Task) -> float:
    """An estimate: ``flops`` at the task's assumed sustained throughput of one H100."""
    return flops / task.assumed_flops_per_s / 3600


def estimated_gpu_hours(params: Params) -> float:
    """A chain's H100-hours estimated from its FLOPs; NaN where the dataset's size is unknown."""
    return gpu_hours(training_flops(params, network_costs(params)), task_of(params))


def short_number(value: float) -> str:
    """Three significant digits, without exponents; tiny values as "<0.01" (costs in tables)."""
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}" if value >= 0.01 else "<0.01"


def network_sizes(costs: list[NetworkCost]) -> str:
    """The distinct architectures among the networks, each with its parameter count in millions."""
    return " / ".join(dict.fromkeys(f"{cost.arch} {cost.parameters / 1e6:.2f}M" for cost in costs))
