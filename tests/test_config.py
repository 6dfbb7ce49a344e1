"""params.yaml validation: every mistake is one line that names the key, and the stage exits with 2.

Most cases run the stage's entry point in this process (cheap); one runs it as a
real process to show the exit status and the absence of a traceback end to end.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml
from project import ROOT, environment, write_params
from stage_process import run_here

from ban.core.config import load_params, params_from_mapping
from ban.core.errors import ConfigError
from ban.nets import ARCHITECTURES
from stages import prepare, train

DEFAULTS = yaml.safe_load((ROOT / "params.yaml").read_text())
REGISTERED = ", ".join(ARCHITECTURES.names())

# (overrides of the default params, the whole expected message)
INVALID = {
    "unknown kd.mode": (
        {"kd": {"mode": "bann"}}, "kd.mode: unknown objective 'bann'; valid: ban, cwtm, dkpp, none"),
    "unknown mode of one student": (
        {"students": {"gen1": {"teacher": "gen0", "kd": {"mode": "cwtn"}}}},
        "students.gen1.kd.mode: unknown objective 'cwtn'; valid: ban, cwtm, dkpp, none"),
    "unknown architecture": (
        {"model": {"arch": "vgg"}},
        f"model.arch: unknown architecture 'vgg'; valid: {REGISTERED}"),
    "unknown student architecture": (
        {"students": {"gen1": {"teacher": "gen0", "model": {"arch": "vgg"}}}},
        f"students.gen1.model.arch: unknown architecture 'vgg'; valid: {REGISTERED}"),
    "missing teacher": (
        {"students": {"gen1": {"teacher": "gen0"}, "gen2": {"teacher": "gen9"}}},
        "students.gen2.teacher: 'gen9' is not a generation; known: gen0, gen1, gen2"),
    "cycle": (
        {"students": {"gen1": {"teacher": "gen2"}, "gen2": {"teacher": "gen1"}}},
        "students.gen1.teacher: cycle gen1 -> gen2 -> gen1"),
    "teacher as a student": (
        {"students": {"gen0": {"teacher": "gen0"}}},
        "students.gen0: gen0 is the teacher and cannot be a student"),
    "zero epochs": ({"train": {"epochs": 0}}, "train.epochs: must be positive, got 0"),
    "negative batch size": ({"train": {"batch_size": -8}}, "train.batch_size: must be positive, got -8"),
    "ensemble member": (
        {"ensemble": {"members": ["gen1", "gen7"]}},
        "ensemble.members: 'gen7' is not a generation; known: gen0, gen1, gen2, gen3"),
    "unknown key": ({"train": {"epoch": 3}}, "train.epoch: unknown key (did you mean 'epochs'?)"),
    "unknown section": ({"trian": {}}, "trian: unknown key (did you mean 'train'?)"),
    "wrong type": ({"train": {"epochs": "ten"}}, "train.epochs: expected int, got str 'ten'"),
    "bool for a number": ({"train": {"batch_size": True}}, "train.batch_size: expected int, got bool True"),
    "list item type": (
        {"train": {"schedule": {"milestones": [60, "120"]}}},
        "train.schedule.milestones[1]: expected int, got str '120'"),
    "mapping expected": ({"train": 5}, "train: expected a mapping, got int"),
    "teacher weights outside the project": (
        {"teacher": {"checkpoint": "/weights/resnet18.pt"}},
        "teacher.checkpoint: '/weights/resnet18.pt' is not a path inside the project; copy or link the "
        "weights file into it and give its relative path"),
    "teacher options without its network": (
        {"teacher": {"options": {"depth": 20}}},
        "teacher.options: set teacher.arch too (null: gen0 is the `model` network, with its options)"),
    "unknown model option": (
        {"model": {"arch": "resnet", "depht": 8}},
        "model.depht: not an option of 'resnet'; valid: depth, width"),
}


def test_unknown_dataset_ends_the_prepare_stage_with_one_line(tmp_path):
    write_params(tmp_path, {"data": {"name": "mnist"}})
    expected = "data.name: unknown dataset 'mnist'; valid: cifar10, cifar100, digits, imagefolder, ptb, text"
    assert run_here(tmp_path, prepare.main, []) == (2, f"error: {expected}\n")


def test_default_params_are_valid():
    params = params_from_mapping(DEFAULTS)
    assert params.generations() == ["gen0", "gen1", "gen2", "gen3"]


@pytest.mark.parametrize("overrides, message", INVALID.values(), ids=INVALID.keys())
def test_invalid_params_end_the_stage_with_one_line_and_status_2(tmp_path, overrides, message):
    write_params(tmp_path, overrides)
    assert run_here(tmp_path, train.main, ["gen1"]) == (2, f"error: {message}\n")  # a student reads kd


def test_yaml_syntax_error_names_the_line(tmp_path):
    (tmp_path / "params.yaml").write_text("seed: 0\ntrain:\n  epochs: [3\n  batch_size: 8\n")
    status, error = run_here(tmp_path, train.main, ["gen0"])
    assert status == 2
    assert error.startswith("error: params.yaml: YAML syntax error at line 4, column 13: ")
    assert error.count("\n") == 1


def test_params_that_are_not_a_mapping(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("- seed\n- train\n")
    with pytest.raises(ConfigError, match=r"^expected a mapping, got list$"):
        load_params(path)


def test_unknown_generation_on_the_command_line(tmp_path):
    write_params(tmp_path, {})
    expected = "error: unknown generation 'gen5'; known: gen0, gen1, gen2, gen3\n"
    assert run_here(tmp_path, train.main, ["gen5"]) == (2, expected)


@pytest.mark.slow
def test_stage_process_exits_2_without_a_traceback(tmp_path):
    write_params(tmp_path, {"train": {"epoch": 3}})
    result = subprocess.run([sys.executable, "-m", "stages.train", "gen0"], cwd=tmp_path, capture_output=True,
                            text=True, env=dict(environment(), PYTHONPATH=str(ROOT)))
    assert result.returncode == 2
    assert result.stderr == "error: train.epoch: unknown key (did you mean 'epochs'?)\n"
