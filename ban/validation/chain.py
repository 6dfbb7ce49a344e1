"""A chain checked against the registries and its data, as the train stages do before any training.

Every generation of the chain is checked, not only the one about to train, so that a typo in the
last student's objective stops the teacher's stage instead of surfacing hours later.
"""

from __future__ import annotations

from ban.core.config import TEACHER, Params
from ban.core.errors import ConfigError
from ban.nets import check_options, get_architecture
from ban.objectives import check_kd
from ban.tasks import TASKS
from ban.training.schedules import check_schedule, schedule_of


def check_names(params: Params) -> None:
    """The schedule, and every objective and network of the chain, is registered and takes the options
    given."""
    schedule_of(params.train)
    check_kd(params.kd, "kd")
    for name, student in params.students.items():
        if student.kd:
            check_kd(params.generation_kd(name), f"students.{name}.kd")
    for key, model in _models(params):
        if not isinstance(model.get("arch"), str):
            raise ConfigError(f"{key}.arch: required (a registered architecture name)")
        check_options(model["arch"], {k: v for k, v in model.items() if k != "arch"}, key)


def check_data(params: Params, task: str, has_validation: bool) -> None:
    """The networks solve the data's task, and the schedule can follow its settings on this data (the
    validation split it may need)."""
    data = TASKS.get(task, "task")
    for key, model in _models(params):
        architecture = get_architecture(model["arch"], key)
        if architecture.task != task:
            network = TASKS.get(architecture.task, "task").model_kind
            raise ConfigError(f"{key}.arch: {model['arch']!r} is {network}, but data.name "
                              f"{params.data.name!r} is {data.data_kind}")
    check_schedule(params.train, has_validation)


def check_chain(params: Params, task: str, has_validation: bool) -> None:
    check_names(params)
    check_data(params, task, has_validation)


def _models(params: Params) -> list[tuple[str, dict]]:
    """(where params.yaml sets its network, the network) for every generation."""
    return [("model" if name == TEACHER else f"students.{name}.model", params.generation(name).model)
            for name in params.generations()]
