"""The study plan: which stages several experiments share, read from the commit the jobs will run; and
how a cancelled job's command is stopped.

A real git + DVC repository of the project; no Ray.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml
from project import make_project, run

from ban.core.errors import ConfigError
from ban_pipeline.launch.plan import Job, expand_grid, grid_experiments, plan_study, without_finished
from ban_pipeline.processes import group_running, stop


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project with a two-student chain (gen1 from gen0, gen2 from gen1) and the presets, committed."""
    return make_project(tmp_path_factory.mktemp("plan") / "project", extra=("presets", "paper"))


def plan(project: Path, *overrides: str, params: str | None = None) -> list[Job]:
    planned = plan_study(project, grid_experiments("p", expand_grid(list(overrides)), params))
    assert planned.rejected == []
    return planned.jobs


def shared(jobs: list[Job]) -> list[str]:
    return [job.stage for job in jobs if not job.is_experiment]


def test_a_grid_over_the_data_shares_nothing(project: Path) -> None:
    """Each data split is its own prepare, so its own teacher and students: no stage runs once for two."""
    jobs = plan(project, "data.test_fraction=0.25,0.3")
    assert shared(jobs) == []
    assert [job.needs for job in jobs] == [(), ()]


def test_a_grid_over_seeds_shares_only_the_data(project: Path) -> None:
    jobs = plan(project, "seed=0,1", "kd.mode=ban,cwtm")
    assert shared(jobs) == ["prepare", "teacher", "teacher"]  # one teacher per seed, for both kd modes
    assert [job.epochs for job in jobs] == [0, 2, 2, 4, 4, 4, 4]  # what each trains: 2 epochs a network
    teachers = {job.overrides[0]: job.name for job in jobs if job.stage == "teacher"}
    for job in jobs:
        if job.is_experiment:
            assert job.needs == (jobs[0].name, teachers[job.overrides[0]])


def test_a_grid_over_one_students_kd_shares_the_chain_before_it(project: Path) -> None:
    """students.gen2.kd changes gen2 (and what reads it) only: prepare, the teacher and gen1 run once."""
    jobs = plan(project, "+students.gen2.kd.mode=ban,cwtm")
    assert shared(jobs) == ["prepare", "teacher", "student@gen1"]
    experiments = [job for job in jobs if job.is_experiment]
    assert [job.epochs for job in experiments] == [2, 2]  # gen2 alone
    assert all(job.needs == tuple(j.name for j in jobs[:3]) for job in experiments)


def test_only_what_the_run_cache_restores_is_shared(project: Path) -> None:
    """Two experiments alike in all but their names (as rows of a table can be) share every stage DVC's
    run-cache restores; ``validate`` and ``evaluate`` (uncached outputs only) run in each,
    since a shared run of them would run again anyway."""
    jobs = plan(project, "seed=0,0")
    assert shared(jobs) == ["prepare", "teacher", "student@gen1", "student@gen2", "ensemble"]
    assert [job.name for job in jobs if job.is_experiment] == ["p-01", "p-02"]


def test_a_preset_is_planned_with_its_own_students(project: Path) -> None:
    """--params presets/study-digits.yaml: its eight networks (not params.yaml's three) are shared by a
    grid that changes only the ensemble."""
    jobs = plan(project, "ensemble.include_teacher=true,false", params="presets/study-digits.yaml")
    assert shared(jobs) == ["prepare", "teacher", "student@gen1", "student@gen2", "student@gen3",
                            "student@banl", "student@cwtm", "student@dkpp", "student@control"]


def test_a_relaunch_runs_the_unfinished_experiments_and_the_shared_stages_they_need(project: Path) -> None:
    jobs = plan(project, "seed=0,1", "kd.mode=ban,cwtm")
    names = [job.name for job in jobs]
    left = without_finished(jobs, {names[3], names[5], names[6]})  # all but seed 0's cwtm
    assert [job.name for job in left] == [names[0], names[1], names[4]]  # prepare, seed 0's teacher, the one
    assert without_finished(jobs, set(names[3:])) == []


def test_the_plan_reads_the_commit_not_the_working_tree(project: Path) -> None:
    """An uncommitted edit (gen2 removed, other data) is not what the jobs run, so not what is planned."""
    params = project / "params.yaml"
    committed = params.read_text()
    edited = yaml.safe_load(committed)
    edited["students"] = {"gen1": {"teacher": "gen0"}}
    edited["data"]["test_fraction"] = 0.5
    params.write_text(yaml.safe_dump(edited))
    (project / "dvc.yaml").write_text((project / "dvc.yaml").read_text().replace("student:", "pupil:"))
    try:
        jobs = plan(project, "+students.gen2.kd.mode=ban,cwtm")
    finally:
        run(project, "git", "checkout", "params.yaml", "dvc.yaml")
    assert shared(jobs) == ["prepare", "teacher", "student@gen1"]
    assert jobs[0].name == plan(project, "+students.gen2.kd.mode=ban,cwtm")[0].name  # the same data key


def test_a_params_file_missing_from_the_commit_is_refused(project: Path) -> None:
    (project / "presets" / "mine.yaml").write_text((project / "params.yaml").read_text())
    with pytest.raises(ConfigError, match=r"^presets/mine.yaml is not in commit HEAD: commit it first$"):
        plan(project, "seed=0", params="presets/mine.yaml")


def test_experiments_are_named_after_the_overrides_that_tell_them_apart() -> None:
    grid = expand_grid(["seed=0,1", "data.root=/shared/datasets/cifar10"])
    assert [experiment.name for experiment in grid_experiments("s", grid)] == ["s-01-seed_0", "s-02-seed_1"]
    assert grid_experiments("s", [("seed=0", "data.root=/x")])[0].name == "s-01-seed_0_data_root_x"
    table_run = grid_experiments("t-lstm", grid, "presets/ptb-lstm.yaml", ("~students.gen2",))
    assert [(e.name, e.overrides, e.params_file) for e in table_run] == [
        ("t-lstm-01-seed_0", ("~students.gen2", *grid[0]), "presets/ptb-lstm.yaml"),
        ("t-lstm-02-seed_1", ("~students.gen2", *grid[1]), "presets/ptb-lstm.yaml")]


@pytest.mark.parametrize("sweep", ["seed=range(0,", "seed=[0,1", "kd.mode=ban,,cwtm"])
def test_a_malformed_sweep_is_one_line(sweep: str) -> None:
    with pytest.raises(ConfigError) as raised:
        expand_grid([sweep])
    assert str(raised.value).startswith(f"-S {sweep}: ")
    assert "\n" not in str(raised.value)


def test_the_time_left_is_the_epochs_left_at_the_speed_between_epoch_ends() -> None:
    """Two experiments of 20 epochs after a shared teacher of 10: the first epoch ends 10 minutes in (an
    estimate from the start: 49 epochs of 10 minutes), 14 more in the next 140 s, the teacher done: now
    the start-up does not count, 35 epochs left at 10 s, 350 s. A finished job counts for nothing left,
    whatever it reported."""
    import time

    from ban_pipeline.launch.jobs import JobResult
    from ban_pipeline.launch.study import Estimate, Outcome

    jobs = [Job("shared-teacher", (), "teacher", (), 10), Job("a", (), None, ("shared-teacher",), 20),
            Job("b", (), None, ("shared-teacher",), 20)]
    estimate = Estimate(jobs, started=time.monotonic() - 600)
    outcome = Outcome(results={"shared-teacher": JobResult("shared-teacher", (), ok=True, stage="teacher")})
    estimate.observe({}, now=0.0)
    estimate.observe({"shared-teacher": 1}, now=600.0)
    assert estimate(Outcome(), {}) == ""
    assert estimate(Outcome(), {"shared-teacher": 1}) == " | 1 epochs trained, 49 to go: about 8.2 h left"
    estimate.observe({"shared-teacher": 10, "a": 5}, now=740.0)
    left = estimate(outcome, {"shared-teacher": 10, "a": 5})
    assert left == " | 15 epochs trained, 35 to go: about 6 min left"


def test_a_pause_long_past_does_not_weigh_on_the_time_left() -> None:
    """An epoch every 10 s, then a pause of 80 minutes (a stopped study, a lost node): right after it the
    speed spans the pause; one epoch later only the last half hour's epochs count, 10 s each again."""
    from ban_pipeline.launch.study import Estimate, Outcome

    estimate = Estimate([Job("x", (), None, (), 100)], window_s=1800.0)
    for trained, now in [(1, 0.0), (2, 10.0), (3, 4810.0)]:
        estimate.observe({"x": trained}, now=now)
    assert estimate(Outcome(), {"x": 3}) == " | 3 epochs trained, 97 to go: about 129.3 h left"
    estimate.observe({"x": 4}, now=4820.0)
    assert estimate(Outcome(), {"x": 4}) == " | 4 epochs trained, 96 to go: about 16 min left"


def test_stopping_a_job_command_waits_for_every_process_it_started() -> None:
    """A cancelled job's command is its whole process group: DVC dies at SIGTERM at once, while its stage
    takes a moment to save its epoch; ``stop`` returns only once that stage is gone too."""
    stage = ("import signal, sys, time; "
             "signal.signal(signal.SIGTERM, lambda *_: (time.sleep(1), sys.exit(143))); "
             "print('ready', flush=True); time.sleep(60)")
    leader = ("import subprocess, sys, time; "
              f"subprocess.Popen([sys.executable, '-c', {stage!r}]); time.sleep(60)")
    process = subprocess.Popen([sys.executable, "-c", leader], start_new_session=True, text=True,
                               stdout=subprocess.PIPE)
    assert process.stdout.readline() == "ready\n"  # the stage (which shares the pipe) handles SIGTERM now
    [child] = psutil.Process(process.pid).children()
    started = time.monotonic()
    stop(process)
    assert time.monotonic() - started >= 0.9  # the stage's second of tidying up was waited for
    assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE
    assert not group_running(process.pid) and process.returncode == -signal.SIGTERM
