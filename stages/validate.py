"""Stage ``validate``: every key of ``params.yaml`` checked, whichever stages will run.

Each training stage depends only on the params sections it reads, so a misspelt key (``kdd`` for
``kd``) changes no stage's dependencies and nothing would re-run to notice it. This stage depends on
the whole file, feeds no other stage and writes nothing: it re-runs on any edit of ``params.yaml``
and fails ``dvc repro`` and ``dvc exp run`` with one line naming the key and the nearest valid one.
"""

from __future__ import annotations

from ban.core.config import load_params
from ban.core.paths import PARAMS
from ban.validation.params_file import validate_everything
from stages.cli import run_process, stage_arguments

PARAMS_READ = "every key (the whole file is checked)"


def main(argv: list[str]) -> None:
    stage_arguments("stages.validate", __doc__, PARAMS_READ).parse_args(argv)
    params = load_params(PARAMS)
    task = validate_everything(params)
    print(f"{PARAMS}: valid ({task} chain: {', '.join(params.generations())})")


if __name__ == "__main__":
    run_process(main)
