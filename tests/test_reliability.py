"""Long runs: a killed or interrupted stage resumes to the same bits, runs repeat bit for bit, and a
run that cannot go on stops at once with one clear line and leaves nothing half-written.

Every stage here is a real process and every signal a real one. On the CPU, with
one thread, an uninterrupted chain and a chain whose teacher was SIGKILLed,
SIGTERMed and SIGINTed must write byte-identical files. Also here: the state of
another training is never read, unreadable state is discarded, a finished stage
leaves no state behind, a code edit outside the stage's imports keeps the state, a
NaN and a full disk stop the run, and deterministic mode's switches.
"""

from __future__ import annotations

import os
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import yaml
from project import FAST, environment, make_project, merge, write_params
from stage_process import digests, prepare, read_until_epoch, saved_epoch, started, state_file, train

from ban.core.config import params_from_mapping
from ban.core.errors import ConfigError
from ban.core.files import save_torch
from ban.training import interrupt
from ban.training.closure import module_files
from ban.training.device import configure_determinism, explain_refusals
from ban.training.generation import stopped_message, training_fingerprint
from ban.training.interrupt import Interrupted, SignalReceived

# About a quarter to half a second per epoch on one thread: a signal can land inside an epoch.
LONG = {
    "data": {"train_subset": None},
    "model": {"arch": "resnet", "depth": 8, "width": 8},
    "train": {"epochs": 6, "batch_size": 64, "device": "cpu", "precision": "fp32"},
    "students": {"gen1": {"teacher": "gen0"}},
}
GENERATION_OUTPUTS = ("models", "preds", "metrics", "dvclive")
OTHER_TRAINING = "state/gen0-0123456789abcdef.pt"  # a state file of gen0 trained with other params


@dataclass
class Finished:
    project: Path
    teacher_output: str
    files: dict[str, str]  # digests of every output


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Finished:
    """The chain gen0 -> gen1 run without interruption, beside a state file left by other params."""
    project = make_project(tmp_path_factory.mktemp("reference") / "project", LONG)
    prepare(project)
    other = {"fingerprint": "made by other params", "trainer": {}, "history": []}
    save_torch(other, project / OTHER_TRAINING)
    teacher = train(project, "gen0")
    assert teacher.returncode == 0, teacher.stderr
    student = train(project, "gen1")
    assert student.returncode == 0, student.stderr
    return Finished(project, teacher.stdout, digests(project, GENERATION_OUTPUTS))


def copy_project(reference: Finished, directory: Path, overrides: dict | None = None) -> Path:
    """The reference project with its prepared data, without outputs, and with other params if given."""
    project = directory / "project"
    shutil.copytree(reference.project, project, ignore=shutil.ignore_patterns(*GENERATION_OUTPUTS, "state"))
    if overrides:
        write_params(project, merge(FAST, merge(LONG, overrides)))
    return project


def epochs_trained(output: str, generation: str = "gen0") -> list[int]:
    return [int(line.split()[2].split("/")[0]) for line in output.splitlines()
            if line.startswith(f"{generation} epoch ")]


@pytest.mark.slow
def test_state_of_other_params_is_never_read_and_a_finished_stage_leaves_none(reference):
    assert epochs_trained(reference.teacher_output) == [1, 2, 3, 4, 5, 6]
    assert "resuming" not in reference.teacher_output and "discarding" not in reference.teacher_output
    assert [path.name for path in (reference.project / "state").iterdir()] == [Path(OTHER_TRAINING).name]


def stop_and_check(project: Path, saved: int, signum: signal.Signals, wait: float) -> int:
    """Resume; signal ``wait`` epochs after the next epoch's progress line; return the epochs then saved."""
    state = state_file(project, "gen0").relative_to(project)
    with started(project, "gen0") as process:
        output, seconds = read_until_epoch(process, "gen0", saved + 1)
        time.sleep(seconds * wait)
        process.send_signal(signum)
        _, error = process.communicate(timeout=120)
    assert f"gen0: resuming after epoch {saved} from {state}" in output
    assert process.returncode == 128 + signum
    now = saved_epoch(project, "gen0")
    assert now >= saved + 1  # the epoch running when the signal came is complete (or a later one: load)
    assert error == (f"error: gen0: stopped by {signum.name}; epochs 1-{now} are saved in {state}: "
                     "run the same command (or `dvc repro`) to resume\n")
    return now


@pytest.mark.slow
def test_killed_and_interrupted_chain_ends_bit_identical(reference, tmp_path):
    """A damaged state file, SIGKILL mid-epoch, SIGTERM as an epoch starts, SIGINT mid-epoch,
    then the rest of the chain: every model, prediction, metric and DVCLive step equals the uninterrupted
    run's, and no state is left."""
    project = copy_project(reference, tmp_path)
    for _ in range(2):  # the second run finds the first one's state damaged, and starts again
        with started(project, "gen0") as process:
            output, seconds = read_until_epoch(process, "gen0", 2)
            time.sleep(seconds / 2)
            process.kill()
            process.wait()
        assert process.returncode == -signal.SIGKILL
        state = state_file(project, "gen0")
        damaged = state.read_bytes()
        state.write_bytes(b"PK\x03\x04 the first bytes of a checkpoint")
    assert (f"gen0: discarding {state.relative_to(project)}: it is corrupt (PytorchStreamReader failed "
            "reading zip archive: failed finding central directory)") in output
    assert epochs_trained(output)[0] == 1
    state.write_bytes(damaged)  # back to the state of the second run, killed during epoch 2
    saved = saved_epoch(project, "gen0")
    saved = stop_and_check(project, saved, signal.SIGTERM, wait=0.0)
    saved = stop_and_check(project, saved, signal.SIGINT, wait=0.5)
    finished = train(project, "gen0")
    assert finished.returncode == 0, finished.stderr
    assert f"gen0: resuming after epoch {saved} from {state.relative_to(project)}" in finished.stdout
    assert epochs_trained(finished.stdout) == list(range(saved + 1, 7))
    assert train(project, "gen1").returncode == 0
    assert digests(project, GENERATION_OUTPUTS) == reference.files
    assert not any((project / "state").iterdir())
    steps = (project / "dvclive/gen0/plots/metrics/test/error.tsv").read_text().splitlines()
    assert [row.split("\t")[0] for row in steps] == ["step", "0", "1", "2", "3", "4", "5"]


def test_a_signal_during_a_protected_write_waits_for_its_end():
    """SIGTERM or SIGINT inside ``protected()`` (the epoch's history, DVCLive files and state) lets the
    writes finish, then stops; outside it, it stops at once."""
    previous = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    interrupt.install()
    written = []
    try:
        with pytest.raises(SignalReceived) as stopped:
            with interrupt.protected():
                os.kill(os.getpid(), signal.SIGTERM)
                os.kill(os.getpid(), signal.SIGINT)  # a second signal asks for the same stop
                written.append("state")
        assert written == ["state"] and stopped.value.signum == signal.SIGTERM
        with interrupt.protected():
            written.append("next epoch")  # nothing is left over from the stop above
        with pytest.raises(SignalReceived):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)  # not reached: the handler raises in this frame
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def test_stop_before_the_first_epoch_says_there_is_nothing_to_resume():
    stop = SignalReceived(signal.SIGTERM)
    assert stopped_message("gen2", stop, 0, Path("state/gen2-0.pt")) == (
        "gen2: stopped by SIGTERM before the first epoch ended; run the same command to start again")
    assert Interrupted("stopped", stop.signum).exit_code == 143


# A stage's stand-in: asks to stop with the process that ran it, says who its parent is, then waits.
STAGE_WAITING = """
import sys, time, psutil
from ban.training import interrupt
interrupt.install()
interrupt.stop_with_parent()
report = open(sys.argv[1], "w", buffering=1)
report.write(f"parent {psutil.Process().parent().cmdline()[0]}\\n")
try:
    time.sleep(60)
except interrupt.SignalReceived as stop:
    report.write(f"stopped by {stop}\\n")
"""


@pytest.mark.parametrize("shell", ["/bin/sh", "/bin/bash"])
def test_a_stage_stops_when_its_dvc_is_killed_whatever_shell_ran_it(shell, tmp_path):
    """DVC runs a stage as ``$SHELL -c CMD``: bash becomes the stage, dash (Debian's /bin/sh, taken where
    SHELL is unset) stays between and outlives a SIGKILLed ``dvc``. Either way the stage gets SIGTERM."""
    report = tmp_path / "report.txt"
    stage = shlex.join([sys.executable, "-c", STAGE_WAITING, str(report)])
    runner = subprocess.Popen([sys.executable, "-c", "import subprocess, sys; subprocess.run(sys.argv[1:])",
                               shell, "-c", stage], env=environment())
    try:
        deadline = time.monotonic() + 30
        while not report.exists() or not report.read_text().endswith("\n"):
            assert runner.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        between = shell if shell == "/bin/sh" else sys.executable  # dash stays, bash execs the stage
        assert report.read_text() == f"parent {between}\n"
        runner.kill()
        runner.wait()
        while "stopped" not in report.read_text():
            assert time.monotonic() < deadline, "the stage trains on after its dvc was killed"
            time.sleep(0.05)
        assert report.read_text().splitlines()[-1] == "stopped by SIGTERM"
    finally:
        runner.kill()


@pytest.mark.slow
def test_finished_stage_rerun_trains_again_to_the_same_bytes(reference, tmp_path):
    """What `dvc repro -f` does to a finished stage (its state is gone): the same training, the same bytes."""
    project = tmp_path / "project"
    shutil.copytree(reference.project, project)
    rerun = train(project, "gen0")
    assert rerun.returncode == 0, rerun.stderr
    assert epochs_trained(rerun.stdout) == [1, 2, 3, 4, 5, 6]
    assert digests(project, GENERATION_OUTPUTS) == reference.files


def interrupted_after_two_epochs(reference: Finished, directory: Path) -> Path:
    project = copy_project(reference, directory)
    with started(project, "gen0") as process:
        read_until_epoch(process, "gen0", 2)
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=120)
    assert saved_epoch(project, "gen0") == 2
    return project


@pytest.mark.slow
def test_an_edit_to_the_training_code_discards_the_state_and_others_keep_it(reference, tmp_path):
    """The state is fingerprinted with the files the train stage imports, the same files dvc.yaml lists:
    an edit to one of them starts the training again (DVC re-runs the stage for it); an edit to the
    reporting code, which DVC ignores for the train stages, resumes it."""
    project = interrupted_after_two_epochs(reference, tmp_path / "training")
    with open(project / "ban/objectives/functional.py", "a") as source:
        source.write("# an edit\n")
    rerun = train(project, "gen0")
    assert rerun.returncode == 0, rerun.stderr
    assert epochs_trained(rerun.stdout) == [1, 2, 3, 4, 5, 6]
    assert digests(project, GENERATION_OUTPUTS)["models/gen0.pt"] == reference.files["models/gen0.pt"]
    assert saved_epoch(project, "gen0") == 2  # the old code's state is left as it was, never read

    project = interrupted_after_two_epochs(reference, tmp_path / "reporting")
    with open(project / "ban_pipeline/reporting/results.py", "a") as source:
        source.write("# an edit\n")
    rerun = train(project, "gen0")
    assert rerun.returncode == 0, rerun.stderr
    assert epochs_trained(rerun.stdout) == [3, 4, 5, 6]


@pytest.mark.slow
def test_fingerprint_follows_what_shapes_training(reference, monkeypatch):
    monkeypatch.chdir(reference.project)  # the data and the teacher are part of it
    settings = yaml.safe_load(Path("params.yaml").read_text())

    def digest(overrides: dict, device: str = "cpu", precision: str = "fp32") -> str:
        params = params_from_mapping(merge(settings, overrides))
        return training_fingerprint(params, params.generation("gen1"), torch.device(device), precision,
                                    module_files("stages.train"))

    same = digest({})
    assert digest({"train": {"nproc": 4}}) == same  # the same run on more processes goes on
    others = [digest({"train": {"optimizer": {"lr": 0.05}}}), digest({"train": {"epochs": 7}}),
              digest({"kd": {"mode": "dkpp"}}), digest({"seed": 1}),
              digest({"students": {"gen1": {"teacher": "gen0", "seed": 7}}}),
              digest({}, precision="bf16"), digest({}, device="meta")]
    assert len({same, *others}) == 1 + len(others)


@pytest.mark.slow
def test_nan_stops_at_once_and_keeps_the_last_good_state(reference, tmp_path):
    """The learning rate jumps by 1e9 after epoch 2; deterministic mode is on (a no-op on the CPU)."""
    project = copy_project(reference, tmp_path, {"train": {
        "schedule": {"name": "step", "milestones": [2], "gamma": 1.0e9}, "deterministic": True}})
    result = train(project, "gen0")
    assert result.returncode == 1
    assert result.stderr == ("error: gen0: the loss became NaN or infinite in epoch 3; lower "
                             "train.optimizer.lr (the last completed epoch's state is kept)\n")
    assert epochs_trained(result.stdout) == [1, 2]
    assert saved_epoch(project, "gen0") == 2
    assert not (project / "models").exists() and not (project / "preds").exists()


@pytest.mark.slow
def test_full_disk_while_saving_is_one_line_and_keeps_the_previous_state(reference, tmp_path):
    """A real write error from the kernel: once epoch 1 is saved, the running stage may not grow a file
    past 100 KiB (RLIMIT_FSIZE, set from outside with prlimit); the state of an epoch takes about 190 KiB."""
    project = copy_project(reference, tmp_path)
    with started(project, "gen0") as process:
        read_until_epoch(process, "gen0", 1)  # printed once its state is saved
        resource.prlimit(process.pid, resource.RLIMIT_FSIZE, (100 << 10, 100 << 10))
        output, error = process.communicate(timeout=120)
    state = state_file(project, "gen0")
    assert process.returncode == 1
    assert error == f"error: could not write {state.relative_to(project)}: File too large\n"
    saved = saved_epoch(project, "gen0")  # epoch 1's, unless the limit came after another epoch's save
    assert epochs_trained(output) == list(range(2, saved + 1))  # a line per saved epoch, none for the failed
    assert list((project / "state").iterdir()) == [state]
    assert not (project / "models").exists()


@pytest.fixture
def determinism_restored():
    """configure_determinism changes process-wide switches: put them back for the other tests."""
    saved = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.deterministic,
             torch.backends.cudnn.benchmark, os.environ.get("CUBLAS_WORKSPACE_CONFIG"))
    yield
    torch.use_deterministic_algorithms(saved[0])
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved[1], saved[2]
    if saved[3] is None:
        os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
    else:
        os.environ["CUBLAS_WORKSPACE_CONFIG"] = saved[3]


def test_deterministic_mode_sets_every_switch(determinism_restored, monkeypatch):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    configure_determinism(False)
    assert not torch.are_deterministic_algorithms_enabled() and torch.backends.cudnn.benchmark
    assert "CUBLAS_WORKSPACE_CONFIG" not in os.environ
    configure_determinism(True)
    assert torch.are_deterministic_algorithms_enabled()
    assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"


def test_an_operation_without_a_deterministic_kernel_is_named():
    # PyTorch's own wording, as raised by AdaptiveAvgPool2d's backward on CUDA in deterministic mode
    refused = ("adaptive_avg_pool2d_backward_cuda does not have a deterministic implementation, but you set "
               "'torch.use_deterministic_algorithms(True)'. You can turn off determinism just for this "
               "operation, or you can use the 'warn_only=True' option, if that's acceptable for your "
               "application.")
    with pytest.raises(ConfigError) as error, explain_refusals("fp32"):
        raise RuntimeError(refused)
    assert str(error.value) == ("train.deterministic: the network uses adaptive_avg_pool2d_backward_cuda, "
                                "which has no deterministic implementation on this device; set "
                                "train.deterministic: false")
    with pytest.raises(RuntimeError, match="^other$"), explain_refusals("fp32"):
        raise RuntimeError("other")


def test_a_bf16_kernel_this_cpu_lacks_is_named():
    # oneDNN's wording, as raised by an LSTM under bf16 autocast on a CPU without AVX512-BF16 or AMX
    refused = ("could not create a primitive descriptor for the LSTM forward propagation primitive. Run "
               "workload with environment variable ONEDNN_VERBOSE=all to get additional diagnostic "
               "information.")
    with pytest.raises(ConfigError) as error, explain_refusals("bf16"):
        raise RuntimeError(refused)
    assert str(error.value) == ("train.precision: this CPU has no bf16 kernel for LSTM forward propagation; "
                                "use fp32 (or auto, which picks bf16 only on CPUs with AVX512-BF16 or AMX)")
    with pytest.raises(RuntimeError, match="^could not"), explain_refusals("fp32"):
        raise RuntimeError(refused)
