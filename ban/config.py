"""``params.yaml`` as typed, validated settings, and the generation graph it defines.

Everything is checked before any work starts, so a typo costs seconds, not an
epoch: unknown keys, wrong types, invalid values, students whose teacher does
not exist, cycles, and ensemble members that are not generations.
"""

from __future__ import annotations

import dataclasses
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ban.errors import ConfigError
from ban.objectives import MODES
from ban.schema import parse

TEACHER = "gen0"
DATASETS = {"digits": "image", "cifar10": "image", "cifar100": "image", "imagefolder": "image",
            "ptb": "lm", "text": "lm"}
SCHEDULES = ("step", "cosine", "constant", "plateau")
DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("auto", "fp32", "bf16")


@dataclass(frozen=True)
class DataConfig:
    name: str = "digits"
    root: str = "data/raw"
    download: bool = False
    train_subset: int | None = None  # images: a class-stratified subset; text: the first N training tokens
    image_size: int | None = None
    test_fraction: float = 0.25
    verify: bool = True  # cifar: check the files' published md5 sums
    seed: int = 0  # the split and subset; apart from the training seed so that seed studies share data


@dataclass(frozen=True)
class OptimizerConfig:
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4


@dataclass(frozen=True)
class ScheduleConfig:
    """``step``: multiply by ``gamma`` at ``milestones``; ``cosine``: to zero at the last epoch;
    ``plateau`` (language models): multiply by ``gamma`` when validation perplexity improved
    by less than ``min_improvement``."""

    name: str = "step"
    milestones: list[int] = field(default_factory=list)
    gamma: float = 0.2
    min_improvement: float = 0.0


@dataclass(frozen=True)
class AugmentConfig:
    crop_padding: int = 0
    hflip: bool = False


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 10
    batch_size: int = 128
    eval_batch_size: int = 1000
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    bptt: int = 35
    clip_grad_norm: float = 0.0
    device: str = "auto"
    precision: str = "auto"
    compile: bool = False
    deterministic: bool = False
    nproc: int = 1


@dataclass(frozen=True)
class KDConfig:
    mode: str = "ban"
    label_weight: float = 0.0
    temperature: float = 1.0


LABELS_ONLY = KDConfig(mode="none")  # the teacher's objective: cross-entropy to the labels


@dataclass(frozen=True)
class StudentConfig:
    teacher: str
    model: dict[str, Any] | None = None
    seed: int | None = None
    kd: dict[str, Any] | None = None  # entries laid over the global kd, e.g. {mode: none} for a control


@dataclass(frozen=True)
class EnsembleConfig:
    members: list[str] | None = None
    include_teacher: bool = False


@dataclass(frozen=True)
class Params:
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    model: dict[str, Any] = field(default_factory=lambda: {"arch": "resnet"})
    train: TrainConfig = field(default_factory=TrainConfig)
    kd: KDConfig = field(default_factory=KDConfig)
    students: dict[str, StudentConfig] = field(default_factory=dict)
    ensemble: EnsembleConfig = field(default_factory=EnsembleConfig)

    @property
    def task(self) -> str:
        return DATASETS[self.data.name]

    def generations(self) -> list[str]:
        """The teacher first, then every student after its own teacher."""
        order, placed = [TEACHER], {TEACHER}
        pending = dict(self.students)
        while pending:
            ready = [name for name, s in pending.items() if s.teacher in placed]
            if not ready:  # a cycle: validate() reports it
                break
            for name in ready:
                order.append(name)
                placed.add(name)
                del pending[name]
        return order

    def generation(self, name: str) -> Generation:
        if name == TEACHER:
            return Generation(TEACHER, None, self.model, derive_seed(self.seed, TEACHER), 0)
        if name not in self.students:
            raise ConfigError(f"unknown generation {name!r}; known: {', '.join(self.generations())}")
        student = self.students[name]
        parent = self.generation(student.teacher)
        seed = student.seed if student.seed is not None else derive_seed(self.seed, name)
        return Generation(name, student.teacher, student_model(self.model, student.model), seed,
                          parent.depth + 1)

    def generation_kd(self, name: str) -> KDConfig:
        """The objective of generation ``name``: one chain can hold BAN, CWTM, DKPP and control students."""
        if name == TEACHER:
            return LABELS_ONLY
        override = self.students[name].kd
        if not override:
            return self.kd
        return parse(KDConfig, {**dataclasses.asdict(self.kd), **override}, f"students.{name}.kd")

    def ensemble_members(self) -> list[str]:
        members = list(self.ensemble.members) if self.ensemble.members else list(self.students)
        if self.ensemble.include_teacher and TEACHER not in members:
            members.insert(0, TEACHER)
        return members


@dataclass(frozen=True)
class Generation:
    """One network of the chain: its teacher (None for gen0), architecture and seed."""

    name: str
    teacher: str | None
    model: dict[str, Any]
    seed: int
    depth: int

    @property
    def arch(self) -> str:
        return self.model["arch"]

    @property
    def options(self) -> dict[str, Any]:
        return {k: v for k, v in self.model.items() if k != "arch"}


def derive_seed(seed: int, name: str) -> int:
    """A distinct, stable seed per generation: new random initialisation, same recipe."""
    return seed * 100_003 + zlib.crc32(name.encode()) % 100_000


def student_model(base: dict[str, Any], override: dict[str, Any] | None) -> dict[str, Any]:
    """A student's ``model`` naming an ``arch`` replaces the base model; otherwise it adjusts it."""
    if not override:
        return dict(base)
    if "arch" in override and override["arch"] != base.get("arch"):
        return dict(override)
    return {**base, **override}


def load_params(path: str | Path = "params.yaml") -> Params:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: file not found (run from the project root)")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or "invalid YAML"
        raise ConfigError(f"{path}: YAML syntax error{where}: {problem}") from None
    return params_from_mapping(raw)


def params_from_mapping(raw: Any) -> Params:
    params = parse(Params, raw, "")
    validate(params)
    return params


def validate(params: Params) -> None:
    """Semantic checks that types alone cannot express."""
    _check_choice("data.name", params.data.name, DATASETS)
    _check_choice("train.schedule.name", params.train.schedule.name, SCHEDULES)
    _check_choice("train.device", params.train.device, DEVICES)
    _check_choice("train.precision", params.train.precision, PRECISIONS)
    for key, value in (("train.epochs", params.train.epochs), ("train.batch_size", params.train.batch_size),
                       ("train.eval_batch_size", params.train.eval_batch_size),
                       ("train.bptt", params.train.bptt), ("train.nproc", params.train.nproc)):
        if value <= 0:
            raise ConfigError(f"{key}: must be positive, got {value}")
    if params.data.train_subset is not None and params.data.train_subset <= 0:
        raise ConfigError(f"data.train_subset: must be positive, got {params.data.train_subset}")
    if not 0 < params.data.test_fraction < 1:
        raise ConfigError(f"data.test_fraction: must be between 0 and 1, got {params.data.test_fraction}")
    _check_kd("kd", params.kd)
    for name in params.students:
        _check_kd(f"students.{name}.kd", params.generation_kd(name))
    if params.train.schedule.name == "plateau" and params.task != "lm":
        raise ConfigError("train.schedule.name: 'plateau' needs a validation split (language models only)")
    _check_graph(params)
    _check_models(params)


def _check_choice(key: str, value: str, valid: Any) -> None:
    if value not in valid:
        raise ConfigError(f"{key}: unknown value {value!r}; valid: {', '.join(valid)}")


def _check_kd(key: str, kd: KDConfig) -> None:
    _check_choice(f"{key}.mode", kd.mode, MODES)
    if kd.temperature <= 0:
        raise ConfigError(f"{key}.temperature: must be positive, got {kd.temperature}")
    if kd.label_weight < 0:
        raise ConfigError(f"{key}.label_weight: must be >= 0, got {kd.label_weight}")
    if kd.mode == "cwtm" and kd.label_weight > 0:
        raise ConfigError(f"{key}.label_weight: cwtm is already a weighted label loss; set it to 0 for cwtm")


def _check_graph(params: Params) -> None:
    if TEACHER in params.students:
        raise ConfigError(f"students.{TEACHER}: {TEACHER} is the teacher and cannot be a student")
    known = {TEACHER, *params.students}
    for name, student in params.students.items():
        if student.teacher not in known:
            raise ConfigError(f"students.{name}.teacher: {student.teacher!r} is not a generation; "
                              f"known: {', '.join(sorted(known))}")
    for name in params.students:
        seen = [name]
        while seen[-1] != TEACHER:
            seen.append(params.students[seen[-1]].teacher)
            if seen[-1] in seen[:-1]:
                raise ConfigError(f"students.{name}.teacher: cycle {' -> '.join(seen)}")
    for member in params.ensemble_members():
        if member not in known:
            raise ConfigError(f"ensemble.members: {member!r} is not a generation; "
                              f"known: {', '.join(sorted(known))}")


def _check_models(params: Params) -> None:
    from ban.nets import check_options, get_architecture

    for name in params.generations():
        model = params.generation(name).model
        key = "model" if name == TEACHER else f"students.{name}.model"
        if "arch" not in model or not isinstance(model["arch"], str):
            raise ConfigError(f"{key}.arch: required (a registered architecture name)")
        architecture = get_architecture(model["arch"], key)
        if architecture.task != params.task:
            raise ConfigError(f"{key}.arch: {model['arch']!r} is {_ARCH_KINDS[architecture.task]}, but "
                              f"data.name {params.data.name!r} is {_DATA_KINDS[params.task]}")
        check_options(model["arch"], {k: v for k, v in model.items() if k != "arch"}, key)


_ARCH_KINDS = {"image": "an image classifier", "lm": "a language model"}
_DATA_KINDS = {"image": "an image dataset", "lm": "a text corpus"}
