"""Stage ``prepare``: the dataset named by ``data.name`` into ``data/prepared/``."""

from __future__ import annotations

from ban.core.config import load_params
from ban.core.paths import PARAMS, PREPARED
from ban.data.prepared import save_prepared
from ban.datasets import prepare_dataset
from stages.cli import run_process, stage_arguments

PARAMS_READ = "data"


def main(argv: list[str]) -> None:
    stage_arguments("stages.prepare", __doc__, PARAMS_READ).parse_args(argv)
    params = load_params(PARAMS)
    prepared = prepare_dataset(params.data)
    save_prepared(PREPARED, prepared)
    sizes = ", ".join(f"{name} {tuple(tensor.shape)}" for name, tensor in prepared.tensors.items())
    print(f"prepared {params.data.name} in {PREPARED}/: {sizes}")


if __name__ == "__main__":
    run_process(main)
