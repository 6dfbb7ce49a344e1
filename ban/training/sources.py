"""The code a stage's params select, beyond what its command imports: the record each stage depends on.

A stage's own imports are listed in ``dvc.yaml``. The modules its params choose (the network of
``model.arch``, the objective of ``kd.mode``, the schedule, the dataset) are not: the ``validate``
stage writes, for every stage, the digest of each such repository file and the version of each installed
package that provides one (``torchvision.models:resnet18`` is pinned by torchvision's version) into
``code/<stage>.json``, which that stage depends on. Editing a module a chain does not use leaves every
record, and so every stage, as it was; editing one it uses changes the records of exactly the stages
that use it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ban.core.config import Params
from ban.core.imports import installed_package, is_import_path
from ban.nets import ARCHITECTURES
from ban.objectives import OBJECTIVES, learns_from_teacher
from ban.training.closure import ROOT, module_files
from ban.training.fingerprint import file_digest
from ban.training.schedules import SCHEDULES

TRAIN_STAGE = "stages.train"  # the command of every generation's stage


@dataclass(frozen=True)
class Sources:
    """Repository files (relative to the root) and pinned installed packages a stage's params select."""

    files: tuple[Path, ...] = ()
    packages: tuple[str, ...] = ()
    weights: tuple[Path, ...] = ()  # outside weights the stage loads (``teacher.checkpoint``)

    def record(self) -> dict[str, Any]:
        """What ``code/<stage>.json`` holds: each file's digest, each package's version, and the digest of
        each weights file (null while it is missing: the stage itself then says so in one line)."""
        return {"files": {path.as_posix(): file_digest(ROOT / path) for path in self.files},
                "packages": list(self.packages),
                "weights": {path.as_posix(): file_digest(path) if path.is_file() else None
                            for path in self.weights}}


def selected_sources(modules: list[str], stage_module: str) -> Sources:
    """The files ``modules`` import (transitively) that the stage's own command does not, and the
    installed packages that provide those outside the repository."""
    static = set(module_files(stage_module))
    files: set[Path] = set()
    packages: set[str] = set()
    for module in modules:
        found = module_files(module)
        if found:
            files |= set(found) - static
            continue
        package = installed_package(module)
        if package:
            packages.add(package)
    return Sources(tuple(sorted(files)), tuple(sorted(packages)))


def network_module(arch: str, key: str) -> str:
    """The module that builds ``arch``: the registered family's, or the module of an import path."""
    if is_import_path(arch):
        return arch.partition(":")[0]
    return ARCHITECTURES.module_of(arch, f"{key}.arch")


def generation_modules(params: Params, name: str) -> list[str]:
    """The modules generation ``name``'s stage selects: its network's and, when it trains, its objective's
    and schedule's, and the network of the teacher it runs."""
    generation = params.generation(name)
    modules = [network_module(generation.arch, params.network_key(name))]
    if generation.checkpoint is not None:
        return modules  # evaluated, not trained
    modules.append(OBJECTIVES.module_of(generation.kd.mode, "kd.mode"))
    modules.append(SCHEDULES.module_of(params.train.schedule.name, "train.schedule.name"))
    if learns_from_teacher(generation):
        teacher = generation.teacher or ""
        modules.append(network_module(params.generation(teacher).arch, params.network_key(teacher)))
    return modules


def generation_sources(params: Params, name: str) -> Sources:
    """The code generation ``name`` selects, and the outside weights it is loaded from, if any: replacing
    that file changes the record, so the stage and every stage after it run again."""
    sources = selected_sources(generation_modules(params, name), TRAIN_STAGE)
    checkpoint = params.generation(name).checkpoint
    return dataclasses.replace(sources, weights=(Path(checkpoint),)) if checkpoint else sources
