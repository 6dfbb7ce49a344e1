"""The GPU smoke test, as far as a machine without a GPU can take it: it stops at its first step with
one line and leaves its report, and its resume check (kill, resume, compare bytes) passes on the CPU."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from project import ROOT, environment

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="what the smoke test does without CUDA")


@no_cuda
def test_without_cuda_the_smoke_test_stops_at_its_first_step_in_one_line(tmp_path):
    result = subprocess.run(["bash", str(ROOT / "bench/gpu_check.sh")], text=True, capture_output=True,
                            env=dict(environment(), OUT=str(tmp_path)), timeout=300)
    assert result.returncode == 1 and result.stderr == ""
    [line] = result.stdout.splitlines()
    assert line.startswith("gpu_check step 1/5 (a usable CUDA device) FAILED: train.device: cuda cannot "
                           "train here: ")
    report = (tmp_path / "gpu_check.md").read_text()
    assert "\n## 1/5 a usable CUDA device\n" in report and "## 2/5" not in report
    assert report.splitlines()[-1] == "FAILED: " + line.split(" FAILED: ", 1)[1]


@pytest.mark.slow
def test_the_resume_check_passes_on_the_cpu():
    """The teacher of the image chain, killed once epoch 2 is logged and resumed, against an uninterrupted
    run (the GPU check runs every generation of both chains this way)."""
    result = subprocess.run([sys.executable, "-m", "bench.gpu_check", "resume", "image", "--device", "cpu",
                             "--generations", "gen0"], cwd=ROOT, env=environment(), text=True,
                            capture_output=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    killed, compared = result.stdout.splitlines()
    assert killed == "gen0: killed after epoch 2 was logged, resumed after epoch 2"  # logged once saved
    assert compared == "10 output files identical after resuming 1 generations"  # outputs, DVCLive files
