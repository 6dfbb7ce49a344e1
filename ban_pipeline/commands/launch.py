"""``python -m stages.launch -S 'seed=range(0,5)' -S 'kd.mode=ban,cwtm'`` (or ``ban launch ...``): a study
on a Ray cluster.

Not a pipeline stage. Every combination of the ``-S`` overrides (the syntax of ``dvc exp run -S``)
becomes an ordinary DVC experiment of the committed HEAD, run in its own clone on a Ray worker. Stages
that several experiments share (``prepare``, a teacher, a student) run once; the others take them from
DVC's run-cache. Without ``--address`` (or ``RAY_ADDRESS``) a local Ray instance is started and stopped.
``--table NAME`` runs one of the paper's tables (``paper/tables.yaml``): each run of its rows (a preset
with its overrides) times the grid. Missing data stops the study before it starts.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ban_pipeline.launch.launcher import LaunchOptions, launch_study


def main(argv: list[str], prog: str = "python -m stages.launch") -> None:
    args = parser(prog).parse_args(argv)
    launch_study(Path.cwd(), LaunchOptions(**vars(args)), lambda line: print(line, flush=True))


def parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-S", "--set-param", action="append", default=[], metavar="[<file>:]<key>=<values>",
                        help="an override, or a sweep (kd.mode=ban,cwtm; seed=range(0,5)), as dvc exp run -S")
    parser.add_argument("--params", metavar="FILE", help="a committed params file (e.g. presets/NAME.yaml) "
                        "that replaces params.yaml in every experiment before the overrides")
    parser.add_argument("--table", metavar="NAME[,NAME...]", help="run every row of the paper's tables "
                        "(paper/tables.yaml; `python -m stages.tables` lists them; `all`: every one): their "
                        "runs x the -S grid")
    parser.add_argument("--rows", metavar="ROW,...", help="only these rows of --table (TABLE:ROW with "
                        "several tables; a table named nowhere runs whole)")
    parser.add_argument("--address", help="Ray cluster to join ('auto': the local node's); default: "
                        "RAY_ADDRESS, or a local Ray instance started for this study")
    parser.add_argument("--cpus-per-experiment", type=int, default=1, help="CPUs each job asks Ray for, "
                        "and its training threads (default: 1)")
    parser.add_argument("--gpus-per-experiment", type=float, default=0, help="GPUs each job asks Ray for "
                        "and trains on (default: 0)")
    parser.add_argument("--git-remote", help="git remote (name or URL) that workers clone from and push "
                        "experiments to; default: origin if set, else this repository (one host only)")
    parser.add_argument("--dvc-remote", help="DVC remote (name or URL) through which workers share outputs "
                        "and the run-cache; default: the default DVC remote, else this repository's cache "
                        "shared directly (one host only)")
    parser.add_argument("--state-dir", help="where train stages keep their per-epoch state (BAN_STATE_DIR); "
                        "shared storage lets a retry on another host resume (default: under --work-dir)")
    parser.add_argument("--work-dir", help="where each host clones the jobs (default: a folder in its "
                        "temporary directory)")
    parser.add_argument("--name", help="prefix of the experiments' names (default: the --table, else "
                        "study-<date>-<time>); the same name again runs only what is left")
    parser.add_argument("--dry-run", action="store_true", help="print the experiments, shared stages and "
                        "estimated cost, check the data, run nothing")
    return parser
