"""Progress inside an epoch, for both domains, as lines (logs) or a bar (terminals), in the stage too."""

from __future__ import annotations

import io
import re
import subprocess
import sys

import pytest
import torch
from builders import text_domain, tiny_language_model, write_grammar_corpus
from project import environment, make_project
from stage_process import prepare

from ban.core.config import DataConfig, KDConfig, TrainConfig
from ban.core.errors import ConfigError
from ban.datasets import prepare_dataset
from ban.nets import build_model
from ban.training.domains.image import ImageDomain
from ban.training.engine import Trainer
from ban.training.progress import Progress, epoch_progress

CPU = torch.device("cpu")
LINE = re.compile(
    r"^(\S+) \[epoch (\d+)/(\d+)\]  (\d+)/(\d+) steps \(\d+%\)  ([\d,]+) (img|tok)/s  "
    r"(\d+:\d\d) left$"
)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_lines_give_rate_and_time_left_from_the_clock():
    ticks = iter([0.0, 1.0, 1.5, 2.0, 4.0])  # start, then after steps 1-4
    out = io.StringIO()
    progress = Progress(
        "gen1 [epoch 1/3]", 10, "tok", every=2.0, bar=False, stream=out, clock=lambda: next(ticks)
    )
    for _ in range(4):
        progress.update(700)
    progress.close()
    # step 3 (2 s after the start) and step 4 (4 s) are due; 2,100 tokens in 2 s, 7 steps left at 1.5 s/step
    assert out.getvalue().splitlines() == [
        "gen1 [epoch 1/3]  3/10 steps (30%)  1,050 tok/s  0:05 left",
        "gen1 [epoch 1/3]  4/10 steps (40%)  700 tok/s  0:06 left",
    ]


def test_a_terminal_gets_one_bar_redrawn_in_place_and_cleared():
    out = Terminal()
    progress = Progress("gen0 [epoch 1/1]", 4, "img", every=0.0, bar=True, stream=out)
    for _ in range(4):
        progress.update(64)
    progress.close()
    text = out.getvalue()
    assert "\n" not in text and text.count("\r[") == 3  # the last step leaves the line to the epoch's report
    assert text.endswith("\r\x1b[K") and "3/4 steps (75%)" in text and "[###############.....]" in text


def test_the_interval_comes_from_the_environment_and_defaults_by_output(monkeypatch):
    monkeypatch.delenv("BAN_PROGRESS_SECONDS", raising=False)
    assert epoch_progress("x", 1, "img", io.StringIO()).every == 30.0
    assert epoch_progress("x", 1, "img", Terminal()).every == 0.5
    monkeypatch.setenv("BAN_PROGRESS_SECONDS", "5")
    assert epoch_progress("x", 1, "img", Terminal()).every == 5.0
    monkeypatch.setenv("BAN_PROGRESS_SECONDS", "often")
    with pytest.raises(ConfigError, match="BAN_PROGRESS_SECONDS='often'"):
        epoch_progress("x", 1, "img", io.StringIO())


def progress_lines(text: str) -> list[re.Match[str]]:
    return [match for line in text.splitlines() if (match := LINE.match(line))]


@pytest.mark.parametrize("task", ["image", "text"])
def test_every_epoch_of_both_domains_reports_its_steps(task, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BAN_PROGRESS_SECONDS", "0")
    if task == "image":
        train = TrainConfig(epochs=2, batch_size=64, precision="fp32")
        domain = ImageDomain(prepare_dataset(DataConfig(train_subset=300)), train, CPU, "fp32")
        torch.manual_seed(0)
        network = build_model("resnet", {"depth": 8, "width": 4}, in_channels=1, num_classes=10)
        model = domain.prepare_model(network)
    else:
        domain = text_domain(write_grammar_corpus(tmp_path))
        train = TrainConfig(epochs=2, batch_size=4, bptt=5)
        model = tiny_language_model(domain)
    Trainer(
        model, domain, train, KDConfig(mode="none"), seed=0, device=CPU, precision="fp32", generation="gen0"
    ).run(lambda report: None)
    lines = progress_lines(capsys.readouterr().out)
    steps = domain.train_steps()
    assert steps == len(list(domain.train_batches(torch.Generator())))
    # every step but the last of each epoch (the epoch's own line follows it)
    assert [(int(m[2]), int(m[4])) for m in lines] == [(e, s) for e in (1, 2) for s in range(1, steps)]
    assert {m[7] for m in lines} == {domain.unit} and all(int(m[5]) == steps for m in lines)


@pytest.mark.slow
def test_a_stage_run_under_a_log_prints_progress_lines(tmp_path):
    project = make_project(tmp_path / "project")
    prepare(project)
    result = subprocess.run(
        [sys.executable, "-m", "stages.train", "gen0"],
        cwd=project,
        text=True,
        capture_output=True,
        env={**environment(), "BAN_PROGRESS_SECONDS": "0.001"},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    lines = progress_lines(result.stdout)
    assert [m[1] for m in lines] == ["gen0"] * 4 and [m[2] for m in lines] == ["1", "1", "2", "2"]
    assert all(float(m[6].replace(",", "")) > 0 for m in lines)
    assert re.search(r"^gen0 epoch   2/2 .* img/s", result.stdout, re.MULTILINE)
