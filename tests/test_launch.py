"""Studies on a real local Ray instance, through a bare git repository and a local DVC remote.

The launcher runs as a real process and starts its own Ray instance (the machine's 2 CPUs); every
job clones the study's commit from the git remote into a folder of its own with its own DVC cache,
as on another host, so outputs and the run-cache go through the DVC remote. After every study no Ray
process is left.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
import yaml
from project import environment, make_project, run

pytestmark = pytest.mark.slow  # real pipelines: processes, DVC, git, Ray

# Full digits, a network slow enough (a few tenths of a second per epoch) for a signal to land mid-run.
STUDY = {"data": {"train_subset": None}, "model": {"arch": "resnet", "depth": 8, "width": 8},
         "train": {"epochs": 4, "batch_size": 64, "device": "cpu", "precision": "fp32"},
         "students": {"gen1": {"teacher": "gen0"}}}
GRID = ["-S", "seed=range(0,2)", "-S", "kd.mode=ban,cwtm"]
RAY_DAEMONS = ("raylet", "gcs_server", "dashboard", "ray::")


@dataclass
class Study:
    project: Path
    git_remote: Path
    dvc_remote: Path
    work: Path
    result: subprocess.CompletedProcess[str]
    killed: list[str]

    @property
    def logs(self) -> dict[str, str]:
        return {path.stem: path.read_text() for path in sorted(self.work.glob("*/logs/*.log"))}

    def metrics(self) -> dict[str, dict]:
        """Each finished experiment's summary metrics, by its overrides."""
        shown = json.loads(run(self.project, "dvc", "exp", "show", "--json").stdout)
        found = {}
        for baseline in shown:
            for experiment in baseline.get("experiments") or []:
                data = experiment["revs"][0]["data"]
                params = data["params"]["params.yaml"]["data"]
                summary = data["metrics"]["metrics/summary.json"]["data"]
                found[(params["seed"], params["kd"]["mode"])] = summary
        return found


def ray_processes() -> set[int]:
    found = set()
    for process in psutil.process_iter(["pid", "name", "cmdline"]):
        text = " ".join(process.info["cmdline"] or []) + (process.info["name"] or "")
        if any(name in text for name in RAY_DAEMONS):
            found.add(process.info["pid"])
    return found


def remotes(tmp_path: Path, project: Path, name: str) -> tuple[Path, Path]:
    """A bare git repository holding the project's main branch, and an empty DVC remote folder."""
    git_remote, dvc_remote = tmp_path / f"{name}.git", tmp_path / f"{name}-dvc"
    run(project, "git", "init", "--quiet", "--bare", str(git_remote))
    run(project, "git", "push", "--quiet", str(git_remote), "main")
    return git_remote, dvc_remote


def launch(project: Path, git_remote: Path, dvc_remote: Path, work: Path, name: str, *grid: str,
           watch: threading.Thread | None = None) -> subprocess.CompletedProcess[str]:
    before = ray_processes()
    command = [sys.executable, "-m", "stages.launch", *grid, "--name", name, "--git-remote", str(git_remote),
               "--dvc-remote", str(dvc_remote), "--work-dir", str(work)]
    if watch:
        watch.start()
    result = subprocess.run(command, cwd=project, env=environment(), capture_output=True, text=True,
                            timeout=900)
    if watch:
        watch.join(timeout=60)
    assert ray_processes() <= before, "the launcher left Ray processes running"
    return result


def kill_first_training(work: Path, generation: str, killed: list[str]) -> threading.Thread:
    """A thread that SIGKILLs the first ``generation`` training of an experiment once an epoch is saved."""
    def watch() -> None:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and not killed:
            for log in work.glob("*/logs/*-seed_*.log"):
                saved = list(work.glob(f"*/state/{generation}-*.pt"))
                if f"{generation} epoch   1/" not in log.read_text() or not saved:
                    continue
                for process in psutil.process_iter(["pid", "cmdline", "cwd"]):
                    if process.info["cmdline"] == ["python", "-m", "stages.train", generation] and \
                            process.info["cwd"] and Path(process.info["cwd"]).name == log.stem:
                        process.send_signal(signal.SIGKILL)
                        killed.append(log.stem)
                        return
            time.sleep(0.05)

    return threading.Thread(target=watch, daemon=True)


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Study:
    """2 seeds x 2 kd modes of a one-student chain, run to the end; one student's training process
    is SIGKILLed once its first epoch is saved."""
    root = tmp_path_factory.mktemp("study")
    project = make_project(root / "project", STUDY)
    git_remote, dvc_remote = remotes(root, project, "reference")
    killed: list[str] = []
    result = launch(project, git_remote, dvc_remote, root / "work", "ref", *GRID,
                    watch=kill_first_training(root / "work", "gen1", killed))
    return Study(project, git_remote, dvc_remote, root / "work", result, killed)


def test_every_experiment_runs_and_is_reported_as_it_ends(study: Study) -> None:
    assert study.result.returncode == 0, study.result.stdout + study.result.stderr
    lines = study.result.stdout.splitlines()
    assert lines[0].startswith("study ref: 4 experiments of commit")
    assert "3 shared stages run once: prepare, teacher, teacher" in lines[0]
    finished = [line for line in lines if line.startswith("done   ref-")]
    assert len(finished) == 4
    for line in finished:  # name, overrides, headline metric of every network, time, and the counts
        assert re.match(r"done   ref-\d\d-seed_\d_kd_mode_\w+ \(seed=\d kd.mode=\w+\): test_error "
                        r"gen0 [\d.]+ gen1 [\d.]+  \[[\d.]+ min, .+\]   \| experiments: \d done, \d running, "
                        r"\d queued$", line)
    assert finished[-1].endswith("| experiments: 4 done, 0 running, 0 queued")
    assert lines[-1].startswith("4 of 4 experiments succeeded")


def test_shared_stages_run_once_per_study(study: Study) -> None:
    """prepare once for all, the teacher once per seed; every experiment restores them from the run-cache."""
    shared = sorted(re.sub(r"-[0-9a-f]{8}$", "", name) for name in study.logs if name.startswith("shared-"))
    assert shared == ["shared-prepare", "shared-teacher", "shared-teacher"]
    assert sum("Running stage 'teacher'" in log for log in study.logs.values()) == 2  # once per seed
    assert sum("Running stage 'prepare'" in log for log in study.logs.values()) == 1
    for name, log in study.logs.items():
        if name.startswith("ref-"):
            assert "Stage 'teacher' is cached - skipping run" in log and "Running stage 'student@gen1'" in log


def test_experiments_come_back_through_the_git_remote(study: Study, tmp_path: Path) -> None:
    fresh = tmp_path / "fresh"
    run(tmp_path, "git", "clone", "--quiet", "--branch", "main", str(study.git_remote), str(fresh))
    run(fresh, "dvc", "exp", "pull", "--no-cache", "origin")
    shown = json.loads(run(fresh, "dvc", "exp", "show", "--json").stdout)
    names = sorted(experiment["name"] for baseline in shown
                   for experiment in baseline.get("experiments") or [])
    assert names == sorted(f"ref-{index:02d}-seed_{seed}_kd_mode_{mode}" for index, (seed, mode) in
                           enumerate([(0, "ban"), (0, "cwtm"), (1, "ban"), (1, "cwtm")], start=1))
    metrics = study.metrics()  # the launcher pulled them into the project too
    assert set(metrics) == {(0, "ban"), (0, "cwtm"), (1, "ban"), (1, "cwtm")}
    assert metrics[(0, "ban")]["gen0"] == metrics[(0, "cwtm")]["gen0"]  # one teacher per seed
    assert metrics[(0, "ban")]["gen0"] != metrics[(1, "ban")]["gen0"]


def test_a_killed_training_is_retried_and_ends_as_an_uninterrupted_run(study: Study, tmp_path: Path) -> None:
    """Ray retries the job whose training was SIGKILLed, in a fresh clone; the stage resumes from its
    saved epoch, and the experiment's metrics equal the same experiment run without interruption."""
    assert len(study.killed) == 1
    name = study.killed[0]
    log = study.logs[name]
    assert log.count(f"=== {name} on ") == 2  # the first attempt, and Ray's retry
    assert re.search(r"gen1: resuming after epoch [1-3] from \S+/state/gen1-[0-9a-f]{16}\.pt", log)
    assert re.search(rf"^start  {name} \(.*\) on .+ \(attempt 2\)", study.result.stdout, re.MULTILINE)
    seed, mode = re.search(r"seed_(\d)_kd_mode_(\w+)$", name).groups()
    alone = make_project(tmp_path / "alone", STUDY)
    run(alone, "dvc", "exp", "run", "-S", f"seed={seed}", "-S", f"kd.mode={mode}")
    uninterrupted = json.loads((alone / "metrics/summary.json").read_text())
    assert study.metrics()[(int(seed), mode)] == uninterrupted


def test_a_bad_override_and_a_failing_stage_are_reported_and_the_others_finish(study: Study) -> None:
    """An unknown objective is refused before anything runs; a network that cannot be built fails in its
    stage; both are reported with their one-line error, the valid experiment finishes, the exit is 1."""
    result = launch(study.project, study.git_remote, study.dvc_remote, study.work, "bad", "-S", "seed=0",
                    "-S", "kd.mode=ban,bogus", "-S", "model.depth=8,7")
    assert result.returncode == 1
    out = result.stdout
    assert "study bad: 4 experiments of commit" in out and "(2 refused)" in out
    refused = ("FAILED bad-03-seed_0_kd_mode_bogus_model_depth_8 (seed=0 kd.mode=bogus model.depth=8): "
               "kd.mode: unknown objective 'bogus'; valid: ban, cwtm, dkpp, none")
    assert refused in out.splitlines()
    assert re.search(r"^FAILED bad-02-seed_0_kd_mode_ban_model_depth_7 \(seed=0 kd.mode=ban model.depth=7\): "
                     r"model.depth: 7 is not of the form 6n\+2 with n >= 1; use e.g. 8, 14, 20, 56  \[", out,
                     re.MULTILINE)
    assert re.search(r"^done   bad-01-seed_0_kd_mode_ban_model_depth_8 ", out, re.MULTILINE)
    assert result.stderr.strip().splitlines()[-1].startswith("error: 3 experiment(s) failed: ")


def test_ctrl_c_cancels_the_study_and_leaves_no_half_written_results(study: Study, tmp_path: Path) -> None:
    project = make_project(tmp_path / "project", STUDY)
    git_remote, dvc_remote = remotes(tmp_path, project, "cancelled")
    before = ray_processes()
    command = [sys.executable, "-m", "stages.launch", *GRID, "--name", "cancel", "--git-remote",
               str(git_remote), "--dvc-remote", str(dvc_remote), "--work-dir", str(tmp_path / "work")]
    launcher = subprocess.Popen(command, cwd=project, env=environment(), text=True, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while not any("gen0 epoch   1/" in log.read_text() for log in (tmp_path / "work").glob("*/logs/*.log")):
        assert launcher.poll() is None and time.monotonic() < deadline, launcher.communicate()
        time.sleep(0.1)
    launcher.send_signal(signal.SIGINT)
    out, error = launcher.communicate(timeout=180)
    assert launcher.returncode == 130, out + error
    assert "cancelling the study" in out
    assert ray_processes() <= before
    assert not [process for process in psutil.process_iter(["cwd"])
                if process.info["cwd"] and str(tmp_path / "work") in process.info["cwd"]]
    assert run(project, "git", "ls-remote", str(git_remote), "refs/exps/*").stdout == ""
    for entry in dvc_remote.glob("runs/*/*/*"):  # whatever entry was pushed has every file it names
        for out_ in yaml.safe_load(entry.read_text())["outs"]:
            digest = out_["md5"]
            assert (dvc_remote / "files" / "md5" / digest[:2] / digest[2:]).exists(), out_["path"]
