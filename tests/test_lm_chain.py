"""Language models in the shared engine: batching, carried state, perplexity, distillation, the DVC chain."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from builders import CPU, TINY_LSTM, text_domain, tiny_language_model, write_grammar_corpus
from project import ROOT, make_project, run, stages_run
from reference_losses import ban_loss

from ban.core.config import KDConfig, TrainConfig, params_from_mapping
from ban.core.errors import ConfigError
from ban.data.streams import batchify
from ban.datasets.corpora import prepare_corpus
from ban.nets.lstm import LSTMLanguageModel
from ban.tasks import TASKS
from ban.training.domains.text import EVAL_ROWS, TextDomain
from ban.training.engine import Trainer
from ban.validation.params_file import validate_everything

TINY_CNN_LSTM = {"arch": "cnn_lstm", "char_embedding": 4, "filter_widths": [1, 2], "filters": [4, 6],
                 "highway_layers": 1, "hidden": 12, "layers": 1, "dropout": 0.0}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_grammar_corpus(tmp_path_factory.mktemp("ptb"))


def test_train_windows_cover_the_stream_once_in_the_same_order_every_epoch(corpus: Path) -> None:
    text = text_domain(corpus, batch_size=4, bptt=5)
    rows = batchify(text.streams["train"], 4)
    epochs = [list(text.train_batches(torch.Generator())) for _ in range(2)]
    inputs = torch.cat([batch.inputs for batch in epochs[0]], dim=1)
    targets = torch.cat([batch.targets.view(4, -1) for batch in epochs[0]], dim=1)
    assert torch.equal(inputs, rows[:, :-1]) and torch.equal(targets, rows[:, 1:])  # shifted by one token
    assert all(batch.targets.shape == (batch.inputs.numel(),) for batch in epochs[0])  # flattened row-major
    assert sum(batch.size for batch in epochs[0]) == rows[:, 1:].numel()
    assert all(torch.equal(a.inputs, b.inputs) for a, b in zip(*epochs, strict=True))


def test_processes_share_the_rows_and_reject_an_uneven_split(corpus: Path) -> None:
    text = text_domain(corpus, batch_size=4)
    whole = list(text.train_batches(torch.Generator()))
    shards = [list(text.train_batches(torch.Generator(), rank, 2)) for rank in (0, 1)]
    for window, (first, second) in enumerate(zip(*shards, strict=True)):
        interleaved = torch.stack([first.inputs, second.inputs], dim=1).flatten(0, 1)  # rows 0, 1, 2, 3
        assert torch.equal(interleaved, whole[window].inputs)
    with pytest.raises(ConfigError, match=r"^train\.batch_size: 4 rows cannot be shared equally by 3 "):
        next(text.train_batches(torch.Generator(), 0, 3))


def test_runner_flattens_logits_and_carries_state_across_windows(corpus: Path) -> None:
    text = text_domain(corpus)
    model = tiny_language_model(text).eval()
    runner = text.runner(model)
    runner.reset(4)
    batches = list(text.train_batches(torch.Generator()))
    with torch.no_grad():
        logits = torch.cat([runner(batch).view(4, -1, len(text.vocab)) for batch in batches], dim=1)
        whole, _ = model(batchify(text.streams["train"], 4)[:, :-1])
        runner.reset(4)  # back to zeros: the first window again gives what it gave the first time
        again = runner(batches[0])
    assert runner(batches[0]).shape == (batches[0].size, len(text.vocab))
    torch.testing.assert_close(logits, whole, rtol=0, atol=1e-5)
    torch.testing.assert_close(again, logits[:, :5].flatten(0, 1), rtol=0, atol=0)


def test_state_is_detached_between_windows(corpus: Path) -> None:
    text = text_domain(corpus)
    runner = text.runner(tiny_language_model(text).train())
    runner.reset(4)
    runner(next(text.train_batches(torch.Generator())))
    assert all(not tensor.requires_grad for tensor in runner.state)


class RecordingLM(LSTMLanguageModel):
    """A real LSTM that notes whether each window starts from a zero state."""

    def __init__(self, vocab_size: int) -> None:
        super().__init__(vocab_size, hidden=8, layers=1, embedding=8, dropout=0.0, tie_weights=True)
        self.zero_starts: list[bool] = []

    def forward(self, tokens: torch.Tensor, state: Any = None) -> Any:
        self.zero_starts.append(state is None or all(bool((t == 0).all()) for t in state))
        return super().forward(tokens, state)


def test_engine_resets_the_state_at_each_epoch_start_only(corpus: Path) -> None:
    text = text_domain(corpus, batch_size=4, bptt=60)
    model = RecordingLM(len(text.vocab))
    trainer = Trainer(model, text, TrainConfig(batch_size=4, bptt=60), KDConfig(mode="none"), seed=0,
                      device=CPU, precision="fp32", generation="gen0")
    windows = len(list(text.train_batches(torch.Generator())))
    trainer.train_epoch()
    trainer.train_epoch()
    assert model.zero_starts == ([True] + [False] * (windows - 1)) * 2


def test_perplexity_is_exp_of_mean_token_nll(corpus: Path) -> None:
    text = text_domain(corpus, bptt=7, eval_batch_size=1000)  # the image setting does not size LM evaluation
    model = tiny_language_model(text).train()
    predictions = text.predict(model, "test")
    assert model.training  # predict restores the mode it found
    rows = batchify(text.streams["test"], EVAL_ROWS)
    with torch.no_grad():
        logits, _ = model.eval()(rows[:, :-1])
    log_probs = torch.log_softmax(logits.double(), dim=2).gather(2, rows[:, 1:, None]).squeeze(2)
    by_hand = math.exp(-float(log_probs.mean()))
    assert torch.equal(predictions.targets, rows[:, 1:].reshape(-1))  # stream order
    assert predictions.probs is None and predictions.argmax.shape == predictions.targets.shape
    metrics = TASKS.get("lm", "task").split_metrics("test", predictions.error, predictions.nll)
    assert metrics["test_perplexity"] == pytest.approx(by_hand, rel=1e-5)
    assert metrics["test_nll"] == pytest.approx(math.log(by_hand), rel=1e-5)


def test_a_uniform_model_has_the_vocabulary_size_as_perplexity(corpus: Path) -> None:
    text = text_domain(corpus)
    model = tiny_language_model(text, options={**TINY_LSTM, "tie_weights": False})
    torch.nn.init.zeros_(model.decoder.weight)
    torch.nn.init.zeros_(model.decoder.bias)
    predictions = text.predict(model, "valid")
    assert math.exp(predictions.nll) == pytest.approx(len(text.vocab), rel=1e-6)


def test_teacher_and_student_runners_keep_their_own_state(corpus: Path) -> None:
    text = text_domain(corpus)
    student, teacher = tiny_language_model(text, 0).eval(), tiny_language_model(text, 1).eval()
    batches = list(text.train_batches(torch.Generator()))[:3]

    def alone(model: torch.nn.Module) -> list[torch.Tensor]:
        runner = text.runner(model)
        runner.reset(4)
        return [runner(batch) for batch in batches]

    with torch.no_grad():
        expected = {"student": alone(student), "teacher": alone(teacher)}
        runners = {"student": text.runner(student), "teacher": text.runner(teacher)}
        for runner in runners.values():
            runner.reset(4)
        interleaved: dict[str, list[torch.Tensor]] = {"student": [], "teacher": []}
        for batch in batches:
            for name, runner in runners.items():
                interleaved[name].append(runner(batch))
    for name in expected:
        assert all(torch.equal(a, b) for a, b in zip(expected[name], interleaved[name], strict=True))


@pytest.mark.parametrize(("mode", "label_weight", "terms"), [
    ("ban", 0.0, {"kd"}), ("ban", 1.0, {"kd", "label"}), ("cwtm", 0.0, {"kd"}), ("dkpp", 0.0, {"kd"}),
    ("none", 0.0, {"label"})])
def test_distillation_step_on_token_logits(corpus: Path, mode: str, label_weight: float,
                                           terms: set[str]) -> None:
    text = text_domain(corpus)
    student, teacher = tiny_language_model(text, 0), tiny_language_model(text, 1)
    teacher_weights = {k: v.clone() for k, v in teacher.state_dict().items()}
    student_weights = {k: v.clone() for k, v in student.state_dict().items()}
    batch = next(text.train_batches(torch.Generator()))
    with torch.no_grad():
        expected_kd = ban_loss(student(batch.inputs)[0].flatten(0, 1), teacher(batch.inputs)[0].flatten(0, 1))
    trainer = Trainer(student, text, TrainConfig(batch_size=4, bptt=5, clip_grad_norm=5.0),
                      KDConfig(mode=mode, label_weight=label_weight), seed=0, device=CPU, precision="fp32",
                      generation="gen1", teacher=teacher)
    runners = [text.runner(student), text.runner(teacher) if trainer.teacher else None]
    for runner in filter(None, runners):
        runner.reset(4)
    figures = trainer.step(batch, *runners)
    assert {name[5:] for name in figures if name.startswith("loss/")} == terms
    assert all(torch.isfinite(value) for value in figures.values())
    if mode == "ban":
        assert figures["loss/kd"].item() / batch.size == pytest.approx(expected_kd.item(), rel=1e-5)  # a sum
    if mode != "none":
        assert {name for name in figures if name.startswith("analysis/")} >= {"analysis/true_class_grad"}
        assert not teacher.training
    assert all(torch.equal(v, teacher_weights[k]) for k, v in teacher.state_dict().items())
    assert any(not torch.equal(v, student_weights[k]) for k, v in student.state_dict().items())


def test_train_subset_keeps_the_first_tokens_and_the_whole_vocabulary(corpus: Path) -> None:
    whole = prepare_corpus("ptb", corpus, download=False)
    subset = prepare_corpus("ptb", corpus, download=False, train_tokens=50)
    assert torch.equal(subset.tensors["train"], whole.tensors["train"][:50])
    assert subset.meta["vocab"] == whole.meta["vocab"]
    assert torch.equal(subset.tensors["test"], whole.tensors["test"])


@pytest.mark.slow
def test_a_language_model_on_images_stops_the_stage_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"data": {"name": "digits"}, "model": TINY_LSTM}))
    for stage in ("prepare", "train gen0"):  # what `dvc repro` runs: the teacher's stage refuses the network
        result = subprocess.run([sys.executable, "-m", *f"stages.{stage}".split()], cwd=tmp_path,
                                capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert result.returncode == 2
    assert result.stderr == ("error: model.arch: 'lstm' is a language model, but data.name 'digits' is an "
                             "image dataset\n")


def test_an_image_classifier_on_text_is_refused() -> None:
    message = "model.arch: 'resnet' is an image classifier, but data.name 'ptb' is a text corpus"
    with pytest.raises(ConfigError, match=f"^{message}$"):
        validate_everything(params_from_mapping({"data": {"name": "ptb"}, "model": {"arch": "resnet"}}))


def preset(name: str) -> dict[str, Any]:
    return yaml.safe_load((ROOT / "presets" / name).read_text())


@pytest.mark.parametrize(("name", "recipe"), [
    ("ptb-lstm.yaml", (1500, 0.65, 1.0, 0.25, 0.0, 40, 32, 35)),
    ("ptb-cnn-lstm.yaml", (650, 0.5, 2.0, 0.5, 0.5, 40, 20, 35))])
def test_language_model_presets_follow_the_paper_recipe(name: str, recipe: tuple[float, ...]) -> None:
    params = params_from_mapping(preset(name))
    train, model = params.train, params.model
    assert (model["hidden"], model["dropout"], train.optimizer.lr, train.schedule.gamma,
            train.schedule.min_improvement, train.epochs, train.batch_size, train.bptt) == recipe
    assert train.schedule.name == "plateau" and train.optimizer.momentum == 0
    assert (params.kd.mode, params.kd.label_weight) == ("ban", 1.0)  # BAN+L, the language-model recipe


@pytest.mark.slow
def test_dvc_repro_of_a_language_model_chain(tmp_path: Path, corpus: Path) -> None:
    project = make_project(tmp_path / "project")
    params = preset("ptb-tiny.yaml")
    params["data"].update(root=str(corpus), train_subset=None)
    params["model"] = TINY_LSTM
    params["train"].update(epochs=2, batch_size=4, bptt=10, clip_grad_norm=5.0)
    params["train"]["optimizer"]["lr"] = 1.0  # the preset's lr 20 is for PTB's 10,000 words, not 17
    params["students"] = {"gen1": {"teacher": "gen0"}, "gen2": {"teacher": "gen1", "model": TINY_CNN_LSTM}}
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    output = run(project, "dvc", "repro").stdout
    assert stages_run(output) == ["prepare", "teacher", "student@gen1", "student@gen2", "ensemble",
                                  "evaluate"]
    vocabulary = len(json.loads((project / "data/prepared/meta.json").read_text())["vocab"])
    for name in ("gen0", "gen1", "gen2"):
        assert (project / f"models/{name}.pt").is_file()
        metrics = json.loads((project / f"metrics/{name}.json").read_text())
        assert {"valid_perplexity", "test_perplexity", "valid_nll", "test_nll"} <= set(metrics)
        assert 1 < metrics["test_perplexity"] < vocabulary  # learned something of the toy grammar
        assert metrics["test_perplexity"] == pytest.approx(math.exp(metrics["test_nll"]))
    members = [torch.load(project / f"preds/{name}.pt", weights_only=True)["splits"]["test"]["target_prob"]
               for name in ("gen1", "gen2")]
    mixture = (members[0].double() + members[1].double()) / 2  # Ens*2 averages the members' probabilities
    ensemble = json.loads((project / "metrics/ensemble.json").read_text())
    by_hand = math.exp(-float(mixture.log().mean()))
    assert ensemble["ens2"]["test_perplexity"] == pytest.approx(by_hand, rel=1e-5)
    results = (project / "reports/results.md").read_text()
    assert "test_perplexity" in results
    assert all(name in results for name in ("gen0", "gen1", "gen2", "ens2"))
    assert (project / "reports/generations.png").stat().st_size > 0


class CountingTextDomain(TextDomain):
    """The real text domain, counting how many times each split is evaluated."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.predicted: list[str] = []

    def predict(self, model: torch.nn.Module, split: str) -> Any:
        self.predicted.append(split)
        return super().predict(model, split)


def test_the_outputs_reuse_the_last_epochs_evaluation(corpus: Path) -> None:
    """Validation and test are evaluated after each evaluated epoch, and not again for the outputs;
    with ``train.eval_every: 2`` over 3 epochs, after epochs 2 and 3 only."""
    settings = TrainConfig(epochs=3, batch_size=4, bptt=5, precision="fp32", eval_every=2)
    text = CountingTextDomain(prepare_corpus("ptb", corpus, download=False), settings, CPU, "fp32")
    trainer = Trainer(tiny_language_model(text), text, settings, KDConfig(mode="none"), seed=0, device=CPU,
                      precision="fp32", generation="gen0")
    reports: list[Any] = []
    trainer.run(reports.append)
    assert [sorted(report.eval) for report in reports] == [[], ["test", "valid"], ["test", "valid"]]
    assert text.predicted == ["valid", "test"] * 2
    final = trainer.final_predictions()
    assert text.predicted == ["valid", "test"] * 2  # nothing evaluated again
    assert final["test"].nll == pytest.approx(reports[-1].eval["test"]["nll"])
