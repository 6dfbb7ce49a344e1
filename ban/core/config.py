"""``params.yaml`` as typed, validated settings, and the generation graph it defines.

Loading checks everything that needs no registry, so a typo costs seconds, not an epoch:
unknown keys, wrong types, invalid values, students whose teacher does not exist, cycles, and
ensemble members that are not generations. The names that registries define (``data.name``,
``kd.mode``, ``model.arch``, ``train.schedule.name``) and what each entry requires of its settings are
checked by ``ban.validation`` (the ``validate`` stage) and by the stages that use them, before any work.
"""

from __future__ import annotations

import dataclasses
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ban.core.errors import ConfigError
from ban.core.schema import parse, read_yaml

TEACHER = "gen0"
DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
STORAGES = ("auto", "memory", "stream")  # where training reads prepared data (ban.training.streaming)


@dataclass(frozen=True)
class DataConfig:
    name: str = "digits"
    root: str = "data/raw"
    download: bool = False
    train_subset: int | None = None  # images: a class-stratified subset; text: the first N training tokens
    validation: int | None = None  # images: hold out that many training images (class-stratified)
    image_size: int | None = None
    test_fraction: float = 0.25
    verify: bool = True  # cifar: check the files' published md5 sums
    seed: int = 0  # the split and subset; apart from the training seed so that seed studies share data
    storage: str = "auto"  # memory: the whole prepared data on the device; stream: batches from mapped files


@dataclass(frozen=True)
class OptimizerConfig:
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4


@dataclass(frozen=True)
class ScheduleConfig:
    """The settings of a schedule of ``ban.training.schedules`` (each reads those it needs)."""

    name: str = "cosine"
    milestones: list[int] = field(default_factory=list)
    gamma: float = 0.2
    min_improvement: float = 0.0
    warmup_share: float = 0.3  # onecycle, linear_warmup_cosine: the share of training spent rising


@dataclass(frozen=True)
class ResizedCropConfig:
    """torchvision's ``RandomResizedCrop`` ranges: the crop's share of the image area and its aspect ratio."""

    scale: list[float] = field(default_factory=lambda: [0.08, 1.0])
    ratio: list[float] = field(default_factory=lambda: [3 / 4, 4 / 3])


@dataclass(frozen=True)
class AugmentConfig:
    crop_padding: int = 1
    hflip: bool = False
    random_resized_crop: ResizedCropConfig | None = None  # null: off; {}: torchvision's default ranges


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 12
    batch_size: int = 64
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
    nproc: int = 1  # processes per node
    nnodes: int = 1  # nodes (hosts) training one generation together
    eval_every: int = 1  # evaluate every k epochs; the last epoch always


@dataclass(frozen=True)
class KDConfig:
    mode: str = "ban"
    label_weight: float = 0.0
    temperature: float = 1.0


LABELS_ONLY = KDConfig(mode="none")  # the teacher's objective: cross-entropy to the labels


@dataclass(frozen=True)
class TeacherConfig:
    """gen0's network when it differs from ``model``, and weights to load instead of training it."""

    checkpoint: str | None = None  # a weights file inside the project: gen0 is evaluated, not trained
    arch: str | None = None  # null: gen0 is the ``model`` network
    options: dict[str, Any] | None = None  # the options of ``arch``


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
    model: dict[str, Any] = field(default_factory=lambda: {"arch": "resnet", "depth": 8, "width": 16})
    train: TrainConfig = field(default_factory=TrainConfig)
    teacher: TeacherConfig = field(default_factory=TeacherConfig)
    kd: KDConfig = field(default_factory=KDConfig)
    students: dict[str, StudentConfig] = field(  # the default chain: BAN-1..3, each from the one before
        default_factory=lambda: {f"gen{k}": StudentConfig(teacher=f"gen{k - 1}") for k in (1, 2, 3)})
    ensemble: EnsembleConfig = field(default_factory=EnsembleConfig)

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
            return Generation(TEACHER, None, self.teacher_model(), derive_seed(self.seed, TEACHER), 0,
                              LABELS_ONLY, self.teacher.checkpoint)
        if name not in self.students:
            raise ConfigError(f"unknown generation {name!r}; known: {', '.join(self.generations())}")
        student = self.students[name]
        parent = self.generation(student.teacher)
        seed = student.seed if student.seed is not None else derive_seed(self.seed, name)
        return Generation(name, student.teacher, student_model(self.model, student.model), seed,
                          parent.depth + 1, self.generation_kd(name))

    def teacher_model(self) -> dict[str, Any]:
        """gen0's network: ``teacher.arch`` with ``teacher.options``, or the ``model`` network."""
        if self.teacher.arch is None:
            return dict(self.model)
        return {"arch": self.teacher.arch, **(self.teacher.options or {})}

    def network_key(self, name: str) -> str:
        """Where params.yaml sets generation ``name``'s network, for errors: ``model``, ``teacher`` or
        ``students.<name>.model``."""
        if name == TEACHER:
            return "model" if self.teacher.arch is None else "teacher"
        return f"students.{name}.model" if self.students[name].model else "model"

    def generation_kd(self, name: str) -> KDConfig:
        """The objective of generation ``name``: one chain can hold BAN, CWTM, DKPP and control students."""
        if name == TEACHER:
            return LABELS_ONLY
        override = self.students[name].kd
        if not override:
            return self.kd
        return parse(KDConfig, {**dataclasses.asdict(self.kd), **override}, f"students.{name}.kd")

    def main_chain(self) -> list[str]:
        """gen1, gen2, ...: each ``genK`` learning from ``gen{K-1}``, in training order. Students with
        other names (a BAN+L, CWTM, DKPP or control student beside the chain) are not part of it."""
        chain: list[str] = []
        while True:
            name, teacher = f"gen{len(chain) + 1}", chain[-1] if chain else TEACHER
            if name not in self.students or self.students[name].teacher != teacher:
                return chain
            chain.append(name)

    def ensemble_members(self) -> list[str]:
        """``ensemble.members``, or the main chain when it is null; the teacher first if included."""
        members = list(self.ensemble.members) if self.ensemble.members else self.main_chain()
        if self.ensemble.include_teacher and TEACHER not in members:
            members.insert(0, TEACHER)
        return members


@dataclass(frozen=True)
class Generation:
    """One network of the chain, resolved from params: its teacher (None for gen0), architecture, seed,
    and the objective it trains with (``kd``, the global one with the student's own entries laid over)."""

    name: str
    teacher: str | None
    model: dict[str, Any]
    seed: int
    depth: int
    kd: KDConfig
    checkpoint: str | None = None  # gen0 only: the outside weights it is loaded from instead of trained

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
    return params_from_mapping(read_yaml(Path(path)))


def params_from_mapping(raw: Any) -> Params:
    params = parse(Params, raw, "")
    validate(params)
    return params


def validate(params: Params) -> None:
    """Semantic checks that types alone cannot express."""
    _check_choice("train.device", params.train.device, DEVICES)
    _check_choice("train.precision", params.train.precision, PRECISIONS)
    for key, value in (("train.epochs", params.train.epochs), ("train.batch_size", params.train.batch_size),
                       ("train.eval_batch_size", params.train.eval_batch_size),
                       ("train.bptt", params.train.bptt), ("train.nproc", params.train.nproc),
                       ("train.nnodes", params.train.nnodes),
                       ("train.eval_every", params.train.eval_every)):
        if value <= 0:
            raise ConfigError(f"{key}: must be positive, got {value}")
    for key in ("train_subset", "validation", "image_size"):
        value = getattr(params.data, key)
        if value is not None and value <= 0:
            raise ConfigError(f"data.{key}: must be null or positive, got {value}")
    _check_choice("data.storage", params.data.storage, STORAGES)
    _check_resized_crop(params.train.augment.random_resized_crop)
    if not 0 < params.data.test_fraction < 1:
        raise ConfigError(f"data.test_fraction: must be between 0 and 1, got {params.data.test_fraction}")
    _check_teacher(params.teacher)
    _check_kd("kd", params.kd)
    for name in params.students:
        _check_kd(f"students.{name}.kd", params.generation_kd(name))
    _check_graph(params)


def _check_choice(key: str, value: str, valid: Any) -> None:
    if value not in valid:
        raise ConfigError(f"{key}: unknown value {value!r}; valid: {', '.join(valid)}")


def _check_teacher(teacher: TeacherConfig) -> None:
    """The weights file must be a path inside the project, relative to its root, so that every clone and
    the teacher's code record (``code/gen0.json``, which holds its digest) name the same file."""
    if teacher.options is not None and teacher.arch is None:
        raise ConfigError("teacher.options: set teacher.arch too (null: gen0 is the `model` network, "
                          "with its options)")
    if "arch" in (teacher.options or {}):
        raise ConfigError("teacher.options.arch: the network is teacher.arch")
    if teacher.checkpoint is None:
        return
    path = Path(teacher.checkpoint)
    if not teacher.checkpoint or path.is_absolute() or ".." in path.parts:
        raise ConfigError(f"teacher.checkpoint: {teacher.checkpoint!r} is not a path inside the project; "
                          "copy or link the weights file into it and give its relative path")


def _check_resized_crop(crop: ResizedCropConfig | None) -> None:
    """Two increasing positive bounds each; a scale above 1 would ask for a crop larger than the image."""
    if crop is None:
        return
    for name, bounds, top in (("scale", crop.scale, 1.0), ("ratio", crop.ratio, float("inf"))):
        if len(bounds) != 2 or not 0 < bounds[0] <= bounds[1] <= top:
            limit = " <= 1" if top == 1.0 else ""
            raise ConfigError(f"train.augment.random_resized_crop.{name}: give [low, high] with 0 < low <= "
                              f"high{limit}, got {bounds}")


def _check_kd(key: str, kd: KDConfig) -> None:
    """The settings every objective shares; the mode and its own checks belong to the objective."""
    if kd.temperature <= 0:
        raise ConfigError(f"{key}.temperature: must be positive, got {kd.temperature}")
    if kd.label_weight < 0:
        raise ConfigError(f"{key}.label_weight: must be >= 0, got {kd.label_weight}")


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
    if params.students and not params.ensemble_members():
        raise ConfigError("ensemble.members: null stands for the chain gen1, gen2, ... (each genK learning "
                          "from gen{K-1}), and no student gen1 learns from gen0: list the members")
