"""Stage ``validate``: every key of ``params.yaml`` checked, whichever stages will run, and a record of
the code each stage's params select.

Each training stage depends only on the params sections it reads, so a misspelt key (``kdd`` for
``kd``) changes no stage's dependencies and nothing would re-run to notice it. This stage runs on every
``dvc repro`` (``always_changed``) and fails it, and ``dvc exp run``, with one line naming the key and
the nearest valid one, before any other stage runs. It writes ``code/<stage>.json``: the digests of the
modules a stage's params select (its network, objective, schedule, dataset) and the versions of the
installed packages that provide any; each stage depends on its own record, so editing a module re-runs
exactly the stages that use it (``ban/training/sources.py``).
"""

from __future__ import annotations

from ban.core.config import load_params
from ban.core.paths import CODE_RECORDS, PARAMS
from ban.validation.code_records import write_code_records
from ban.validation.params_file import validate_everything
from stages.cli import run_process, stage_arguments

PARAMS_READ = "every key (the whole file is checked)"


def main(argv: list[str]) -> None:
    stage_arguments("stages.validate", __doc__, PARAMS_READ).parse_args(argv)
    params = load_params(PARAMS)
    task = validate_everything(params)
    stages = write_code_records(params)
    print(f"{PARAMS}: valid ({task} chain: {', '.join(params.generations())}); "
          f"code selected by each stage recorded in {CODE_RECORDS}/ ({len(stages)} stages)")


if __name__ == "__main__":
    run_process(main)
