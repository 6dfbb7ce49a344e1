"""``python -m stages.launch -S 'seed=range(0,5)' -S 'kd.mode=ban,cwtm'``: a study on a Ray cluster.

Not a pipeline stage. Every combination of the ``-S`` overrides (the syntax of ``dvc exp run -S``)
becomes an ordinary DVC experiment of the committed HEAD, run in its own clone on a Ray worker. Stages
that several experiments share (``prepare``, a teacher, a student) run once; the others take them from
DVC's run-cache. Without ``--address`` (or ``RAY_ADDRESS``) a local Ray instance is started and stopped.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

from ban.core.errors import BanError, ConfigError
from ban.core.paths import PARAMS
from ban.launch.cluster import check_cluster
from ban.launch.gpus import check_gpus
from ban.launch.jobs import Settings
from ban.launch.plan import expand_grid, plan_study, without_finished
from ban.launch.study import Resources, run_study
from ban.tools import dvc, git
from stages.cli import run

PACKAGE = Path(__file__).resolve().parents[1] / "ban"


def main(argv: list[str]) -> None:
    args = parser().parse_args(argv)
    root = Path.cwd()
    if not (root / "dvc.yaml").exists() or not (root / ".git").exists():
        raise ConfigError("run it at the root of the project's git repository (where dvc.yaml is)")
    if args.cpus_per_experiment < 1 or args.gpus_per_experiment < 0:
        raise ConfigError("--cpus-per-experiment must be >= 1 and --gpus-per-experiment >= 0")
    prefix = args.name or time.strftime("study-%Y%m%d-%H%M%S")
    settings = study_settings(root, args, prefix)
    address = args.address or os.environ.get("RAY_ADDRESS")
    if address and not args.dry_run:
        check_cluster(address)  # seconds, where ray.init would retry for a minute and end in a traceback
    base = Path(settings.params_file or PARAMS)
    jobs, rejected = plan_study(root, expand_grid(args.set_param), prefix, base, settings.commit)
    experiments = [job for job in jobs if job.is_experiment]
    finished = pushed_experiments(settings) & {job.name for job in experiments}
    jobs = without_finished(jobs, finished)
    shared = [job.stage for job in jobs if not job.is_experiment]
    settings = dataclasses.replace(settings, shared_stages=tuple(sorted(set(shared))))
    print(f"study {prefix}: {len(experiments) + len(rejected)} experiments of commit {settings.commit[:12]}"
          f" ({len(rejected)} refused), {len(shared)} shared stages run once"
          f"{': ' + ', '.join(shared) if shared else ''}; logs in {settings.log_dir}", flush=True)
    if finished:
        print("finished before (in the git remote), not run again:", ", ".join(sorted(finished)), flush=True)
    if args.dry_run:
        for job in jobs:
            print(f"  {job.name}: {job.stage or ' '.join(job.overrides) or '(committed params)'}"
                  f"{' after ' + ', '.join(job.needs) if job.needs else ''}")
        return
    outcome = launch(jobs, settings, Resources(args.cpus_per_experiment, args.gpus_per_experiment), args,
                     rejected)
    succeeded = sorted(finished) + [result.name for result in outcome.experiments if result.ok]
    if succeeded and settings.git_remote != str(root):
        dvc(root, "exp", "pull", "--no-cache", settings.git_remote, *succeeded)
    print(f"{len(succeeded)} of {len(experiments) + len(rejected)} experiments succeeded; see them with "
          "`dvc exp show`, aggregate them with `python -m stages.aggregate`", flush=True)
    if outcome.failed:
        raise BanError(f"{len(outcome.failed)} experiment(s) failed: {', '.join(outcome.failed)}")


def pushed_experiments(settings: Settings) -> set[str]:
    """Names of the experiments of the study's commit in the git remote: those a relaunched study (same
    ``--name``) finished before, and pushed only once they had succeeded."""
    refs = git(Path.cwd(), "ls-remote", settings.git_remote, "refs/exps/*").splitlines()
    baseline = f"refs/exps/{settings.commit[:2]}/{settings.commit[2:]}/"
    return {ref.split("\t")[1][len(baseline):] for ref in refs if ref.split("\t")[1].startswith(baseline)}


def cancel(signum: int, frame: object) -> None:
    """Ctrl-C or a scheduler's SIGTERM: cancel the study as a KeyboardInterrupt does."""
    raise KeyboardInterrupt


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m stages.launch", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-S", "--set-param", action="append", default=[], metavar="[<file>:]<key>=<values>",
                        help="an override, or a sweep (kd.mode=ban,cwtm; seed=range(0,5)), as dvc exp run -S")
    parser.add_argument("--params", metavar="FILE", help="a committed params file (e.g. presets/NAME.yaml) "
                        "that replaces params.yaml in every experiment before the overrides")
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
    parser.add_argument("--name", help="prefix of the experiments' names (default: study-<date>-<time>)")
    parser.add_argument("--dry-run", action="store_true", help="print the experiments and shared stages, "
                        "run nothing")
    return parser


def study_settings(root: Path, args: argparse.Namespace, prefix: str) -> Settings:
    commit = git(root, "rev-parse", "HEAD")
    if git(root, "status", "--porcelain", "--untracked-files=no"):
        print(f"warning: uncommitted changes are not part of the study; it runs commit {commit[:12]}",
              file=sys.stderr)
    remotes = git(root, "remote").split()
    git_remote = args.git_remote or ("origin" if "origin" in remotes else str(root))
    if git_remote in remotes:
        git_remote = git(root, "remote", "get-url", git_remote)
    dvc_remote = args.dvc_remote or default_dvc_remote(root)
    cluster = args.address or os.environ.get("RAY_ADDRESS")
    if dvc_remote is None and cluster:
        raise ConfigError("--dvc-remote: workers on other hosts share outputs through a DVC remote; give one "
                          "(any remote DVC supports, e.g. s3://bucket/path or a shared folder)")
    configured = dict(line.split()[:2] for line in dvc(root, "remote", "list").splitlines() if line.strip())
    if dvc_remote in configured:
        dvc_remote = configured[dvc_remote]
    elif dvc_remote and "://" not in dvc_remote:
        dvc_remote = str(Path(dvc_remote).resolve())
    work_root = Path(args.work_dir or Path(tempfile.gettempdir()) / "ban-study") / prefix
    shared_cache = None if dvc_remote else dvc(root, "cache", "dir").strip()
    state_dir = Path(args.state_dir).resolve() if args.state_dir else work_root / "state"
    params_file = None
    if args.params:
        params_file = str(Path(args.params).resolve().relative_to(root.resolve()))
        if not git(root, "ls-files", params_file):
            raise ConfigError(f"--params: {args.params} is not a file committed in this repository")
    return Settings(git_remote=_absolute(git_remote), commit=commit, work_root=str(work_root),
                    params_file=params_file,
                    log_dir=str(work_root / "logs"), dvc_remote=dvc_remote, shared_cache=shared_cache,
                    state_dir=str(state_dir), cpus=args.cpus_per_experiment)


def launch(jobs: list, settings: Settings, resources: Resources, args: argparse.Namespace,
           rejected: list) -> object:
    """Connect to (or start) Ray, run the study, and always disconnect (stopping an instance it started)."""
    import ray

    address = args.address or os.environ.get("RAY_ADDRESS")
    runtime_env = {"py_modules": [str(PACKAGE)], "env_vars": {"DVC_NO_ANALYTICS": "1"}}
    try:
        ray.init(address=address, runtime_env=runtime_env, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
    except (ConnectionError, RuntimeError, ray.exceptions.RayError) as error:
        raise BanError(f"Ray: {str(error).strip().splitlines()[0]}") from None
    for signum in (signal.SIGINT, signal.SIGTERM):  # after ray.init, which installs handlers of its own
        signal.signal(signum, cancel)  # SIGINT too: a background start leaves it ignored
    try:
        available = ray.cluster_resources()
        print(f"Ray: {available.get('CPU', 0):g} CPUs, {available.get('GPU', 0):g} GPUs "
              f"({'joined ' + address if address else 'a local instance'})", flush=True)
        for line in check_gpus(available.get("GPU", 0), resources.gpus, Path(settings.params_file or PARAMS),
                               [job for job in jobs if job.is_experiment]):
            print(line, file=sys.stderr, flush=True)
        return run_study(jobs, settings, resources, lambda line: print(line, flush=True), rejected)
    finally:
        ray.shutdown()


def default_dvc_remote(root: Path) -> str | None:
    try:
        return dvc(root, "remote", "default").strip() or None
    except BanError:  # DVC fails when no remote is the default
        return None


def _absolute(location: str) -> str:
    return location if "://" in location or ":" in location.split("/")[0] else str(Path(location).resolve())


if __name__ == "__main__":
    run(main)
