"""Stage ``teacher`` / ``student@genK``: ``python -m stages.train gen2`` trains generation 2."""

from __future__ import annotations

from ban.core.config import load_params
from ban.core.paths import PARAMS
from ban.training.closure import module_files
from ban.training.distributed import launched, relaunch
from ban.training.generation import train_generation
from ban.training.interrupt import stop_with_parent
from ban.validation.chain import check_generation
from stages.cli import run_process, stage_arguments

PARAMS_READ = ("seed, data, model, train; the teacher's also teacher; a student's also kd and "
               "students.<generation>")


def main(argv: list[str]) -> None:
    parser = stage_arguments("stages.train", __doc__, PARAMS_READ)
    parser.add_argument("generation", help="gen0 (the teacher) or a key of `students` in params.yaml")
    args = parser.parse_args(argv)
    stop_with_parent()
    params = load_params(PARAMS)
    check_generation(params, args.generation)
    if params.train.nproc * params.train.nnodes > 1 and not launched():
        relaunch(params.train.nproc, params.train.nnodes, "stages.train", argv)  # every rank runs it again
    train_generation(params, args.generation, code=module_files("stages.train"))


if __name__ == "__main__":
    run_process(main)
