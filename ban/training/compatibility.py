"""Whether a chain's settings fit the prepared data: each network solves the data's task, and the
schedule finds what it follows (a validation split). The train stages check it once the data is loaded;
the ``validate`` stage checks it from the dataset's registration, before anything runs."""

from __future__ import annotations

from ban.core.config import Params
from ban.core.errors import ConfigError
from ban.nets import get_architecture
from ban.tasks import TASKS
from ban.training.schedules import check_schedule


def check_fits_data(params: Params, generations: list[str], task: str, has_validation: bool) -> None:
    """The networks of ``generations`` solve ``task``, and the schedule can follow its settings on this
    data (the validation split it may need)."""
    data = TASKS.get(task, "task")
    for name in generations:
        key, arch = params.network_key(name), params.generation(name).arch
        architecture = get_architecture(arch, key)
        if architecture.task != task:
            network = TASKS.get(architecture.task, "task").model_kind
            raise ConfigError(f"{key}.arch: {arch!r} is {network}, but data.name "
                              f"{params.data.name!r} is {data.data_kind}")
    check_schedule(params.train, has_validation)
