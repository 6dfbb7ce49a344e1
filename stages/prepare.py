"""Stage ``prepare``: the dataset named by ``data.name`` into ``data/prepared/``."""

from __future__ import annotations

from ban.core.config import load_params
from ban.core.paths import PARAMS, PREPARED
from ban.data.prepared import load_prepared
from ban.datasets import write_prepared
from stages.cli import run_process, stage_arguments

PARAMS_READ = "data"


def main(argv: list[str]) -> None:
    stage_arguments("stages.prepare", __doc__, PARAMS_READ).parse_args(argv)
    params = load_params(PARAMS)
    write_prepared(params.data, PREPARED)
    prepared = load_prepared(PREPARED)  # mapped: nothing is read but the shapes
    sizes = ", ".join(f"{name} {tuple(tensor.shape)}" for name, tensor in prepared.tensors.items())
    print(f"prepared {params.data.name} in {PREPARED}/: {sizes}")


if __name__ == "__main__":
    run_process(main)
