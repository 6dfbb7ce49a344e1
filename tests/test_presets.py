"""Every preset is a valid params file whose networks build; applying one copies it over params.yaml.

Networks are built on the meta device (no memory, no weights), which gives their parameter counts;
the paper's published counts are checked where the paper gives them.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from project import ROOT

from ban.core.config import KDConfig, Params, params_from_mapping
from ban.core.errors import ConfigError
from ban.tasks import TASKS
from ban.validation.params_file import validate_everything
from ban_pipeline.presets import PRESETS, gpu_hours, network_costs, title, training_flops
from stages import preset

NAMES = sorted(path.stem for path in (ROOT / PRESETS).glob("*.yaml"))
# Parameters the paper lists (millions) for the teacher of a preset; ours are within 3% except
# DenseNet-BC-112-33, whose 6.99M the paper gives as 6.3M (11% less).
PUBLISHED = {"cifar10-wrn-28-1": (0.38, 0.03), "cifar10-wrn-28-2": (1.48, 0.03),
             "cifar10-wrn-28-5": (9.16, 0.03), "cifar10-wrn-28-10": (36.48, 0.001),
             "cifar100-densenet-112-33": (6.3, 0.12), "cifar100-densenet-90-60": (16.1, 0.03),
             "cifar100-densenet-80-80": (22.4, 0.03), "cifar100-densenet-80-120": (50.4, 0.03),
             "ptb-lstm": (52.0, 0.03), "ptb-cnn-lstm": (19.0, 0.03)}


def resolve(name: str) -> Params:
    """A preset's params, checked as every stage of its chain would check them."""
    params = params_from_mapping(yaml.safe_load((ROOT / PRESETS / f"{name}.yaml").read_text()))
    validate_everything(params)
    return params


def test_the_paper_tables_and_studies_are_presets() -> None:
    expected = {"cifar10-wrn-28-1", "cifar10-wrn-28-2", "cifar10-wrn-28-5", "cifar10-wrn-28-10",
                "cifar100-densenet-112-33", "cifar100-densenet-90-60", "cifar100-densenet-80-80",
                "cifar100-densenet-80-120", "cifar100-densenet-90-60-to-resnets", "study-digits",
                "study-cifar10-fit", "study-cifar10-underfit"}
    assert expected <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_preset_validates_and_every_network_builds(name: str) -> None:
    params = resolve(name)
    costs = network_costs(params, count_flops=False)
    assert [cost.generation for cost in costs] == params.generations()
    assert all(cost.parameters > 0 for cost in costs)
    assert title(ROOT / PRESETS / f"{name}.yaml"), "the first line says what the preset runs"
    if name in PUBLISHED:
        millions, tolerance = PUBLISHED[name]
        assert costs[0].parameters / 1e6 == pytest.approx(millions, rel=tolerance)


@pytest.mark.parametrize("name", [n for n in NAMES if n.startswith(("cifar10-", "cifar100-"))])
def test_cifar_presets_follow_the_paper_recipe(name: str) -> None:
    params = resolve(name)
    train = params.train
    assert (train.epochs, train.batch_size, train.schedule.name, train.schedule.milestones,
            train.schedule.gamma) == (200, 128, "step", [60, 120, 160], 0.2)
    assert (train.optimizer.lr, train.optimizer.momentum, train.optimizer.nesterov,
            train.optimizer.weight_decay) == (0.1, 0.9, True, 5e-4)
    assert (train.augment.crop_padding, train.augment.hflip) == (4, True)
    networks = [params.generation(name) for name in params.generations()]
    assert all(network.options["dropout"] == 0.3 for network in networks if network.arch == "wrn")


def test_wrn_28_10_forward_flops_and_training_compute() -> None:
    """5.25 GMACs per 32x32 image (the WRN paper's figure); 3 networks, two of them students with a
    teacher (the control has none), 50,000 images and 10,000 evaluated per epoch, 200 epochs."""
    params = resolve("cifar10-wrn-28-10")
    costs = network_costs(params)
    forward = costs[0].forward_flops
    assert forward == pytest.approx(2 * 5.25e9, rel=0.01)
    per_epoch = (3 * 3 + 1) * forward * 50_000 + 3 * forward * 10_000
    assert training_flops(params, costs) == pytest.approx(200 * per_epoch, rel=1e-9)


def test_gpu_hours_assume_100_tflops_for_images_and_10_for_recurrent_models() -> None:
    assert gpu_hours(3.6e17, TASKS.get("image", "task")) == pytest.approx(1.0)
    assert gpu_hours(3.6e16, TASKS.get("lm", "task")) == pytest.approx(1.0)


def test_language_models_count_two_forward_flops_per_parameter_and_token() -> None:
    model = {"arch": "lstm", "layers": 1, "hidden": 8, "tie_weights": True}
    params = params_from_mapping({"data": {"name": "ptb"}, "model": model, "train": {"epochs": 2},
                                  "students": {"gen1": {"teacher": "gen0"}}})
    costs = network_costs(params)
    parameters = 10_000 * 8 + 4 * 8 * (8 + 8 + 2) + 10_000  # tied embedding, LSTM gates, decoder bias
    assert [(cost.parameters, cost.forward_flops) for cost in costs] == [(parameters, 2.0 * parameters)] * 2
    per_epoch = (3 + 3 + 1) * 2 * parameters * 929_589 + 2 * 2 * parameters * (73_760 + 82_430)
    assert training_flops(params, costs) == pytest.approx(2 * per_epoch, rel=1e-9)


def test_a_student_kd_override_lays_over_the_global_kd() -> None:
    params = resolve("study-digits")
    assert params.generation_kd("control") == KDConfig(mode="none")
    assert params.generation_kd("banl") == KDConfig(mode="ban", label_weight=1.0)
    assert params.generation_kd("gen2") == params.kd
    assert params.generation_kd("gen0").mode == "none"


@pytest.mark.parametrize(("override", "message"), [
    ({"mode": "cwtm", "label_weight": 1.0}, "students.gen1.kd.label_weight: cwtm is already"),
    ({"mod": "none"}, "students.gen1.kd.mod: unknown key (did you mean 'mode'?)"),
    ({"mode": "bann"}, "students.gen1.kd.mode: unknown objective 'bann'"),
])
def test_an_invalid_student_kd_names_its_key(override: dict, message: str) -> None:
    raw = yaml.safe_load((ROOT / PRESETS / "study-digits.yaml").read_text())
    raw["students"]["gen1"]["kd"] = override
    with pytest.raises(ConfigError, match=re.escape(message)):
        validate_everything(params_from_mapping(raw))


def test_applying_a_preset_copies_it_and_listing_names_them_all(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "presets").mkdir()
    for name in ("cifar10-wrn-28-10", "study-digits"):
        (tmp_path / "presets" / f"{name}.yaml").write_bytes((ROOT / PRESETS / f"{name}.yaml").read_bytes())
    preset.main(["cifar10-wrn-28-10"])
    assert (tmp_path / "params.yaml").read_bytes() == (ROOT / PRESETS / "cifar10-wrn-28-10.yaml").read_bytes()
    assert "(3 networks: wrn 36.48M)" in capsys.readouterr().out
    preset.main(["--list"])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")][1:]
    assert [row.split(" | ")[0][2:] for row in rows] == ["cifar10-wrn-28-10", "study-digits"]
    with pytest.raises(ConfigError, match="unknown preset 'nope'; known: cifar10-wrn-28-10, study-digits"):
        preset.main(["nope"])


@pytest.mark.slow  # a fresh interpreter: what a command's start costs
def test_counting_parameters_draws_no_weights_and_loads_no_compiler() -> None:
    """The networks whose sizes ``stages.preset`` and ``stages.tables`` list are built on the meta device
    without their random initialisation, whose first draw there would import torch's compiler."""
    script = ("import sys\n"
              "from ban_pipeline.presets import load_preset, network_costs, preset_path\n"
              "costs = network_costs(load_preset(preset_path('cifar10-wrn-28-10')), count_flops=False)\n"
              "print(len(costs), sorted({'torch._dynamo', 'torch._inductor', 'sympy'} & set(sys.modules)))")
    counted = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                             check=True)
    assert counted.stdout.split("\n")[0] == "3 []"
