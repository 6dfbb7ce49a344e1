"""A chain checked against the registries and its data before any work.

The ``validate`` stage checks every generation, so that a typo in the last student's objective stops
``dvc repro`` before the teacher trains; a train stage checks its own generation again (it may run alone),
importing only the modules its own settings select.
"""

from __future__ import annotations

from ban.core.config import Params
from ban.core.errors import ConfigError
from ban.nets import check_options
from ban.objectives import check_kd
from ban.training.compatibility import check_fits_data
from ban.training.schedules import schedule_of


def check_generation(params: Params, name: str) -> None:
    """The schedule, and generation ``name``'s objective and network, are known and take the options given."""
    schedule_of(params.train)
    generation = params.generation(name)
    if generation.teacher is not None:
        key = f"students.{name}.kd" if params.students[name].kd else "kd"
        check_kd(generation.kd, key)
    key = params.network_key(name)
    if not isinstance(generation.model.get("arch"), str):
        raise ConfigError(f"{key}.arch: required (a registered architecture or `package.module:callable`)")
    check_options(generation.arch, generation.options, key)


def check_chain(params: Params, task: str, has_validation: bool) -> None:
    """Every generation, and the whole chain against the data's task."""
    check_kd(params.kd, "kd")
    for name in params.generations():
        check_generation(params, name)
    check_fits_data(params, params.generations(), task, has_validation)
