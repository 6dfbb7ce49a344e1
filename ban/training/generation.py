"""Train one generation of the chain end to end and write its files.

This is the body of the ``teacher`` and ``student@genK`` stages: build the
network, load the frozen teacher, resume from saved state when it matches,
train with per-epoch logging and state saving, then write the checkpoint, the
test-set predictions and the metrics. A teacher given as outside weights
(``teacher.checkpoint``) is evaluated instead and writes the same files.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ban.core.config import Generation, Params
from ban.core.errors import BanError, DataError, import_optional
from ban.core.files import save_json, save_torch
from ban.core.imports import is_import_path
from ban.core.paths import PREPARED, live_dir, metrics_path, model_path, predictions_path, stage_name
from ban.data.prepared import load_prepared, prepared_files
from ban.nets import build_model, check_output, count_parameters
from ban.objectives import learns_from_teacher
from ban.predictions import GenerationMetrics, GenerationPredictions, Predictions
from ban.tasks import TASKS, TEACHER_TRUE_PROB, history_name
from ban.training import interrupt
from ban.training.checkpoint import load_model, save_model, unwrap
from ban.training.closure import ROOT
from ban.training.compatibility import check_fits_data
from ban.training.device import (
    configure_determinism,
    describe_device,
    device_label,
    explain_refusals,
    resolve_device,
    resolve_precision,
)
from ban.training.distributed import Distributed, distribute, start_process_group, wait_for_all
from ban.training.domain import Domain, make_domain
from ban.training.engine import EpochReport, Trainer
from ban.training.fingerprint import fingerprint
from ban.training.outside import load_weights, read_weights
from ban.training.sources import generation_sources
from ban.training.state import load_state, remove_state, save_state, state_path

log = logging.getLogger(__name__)


def train_generation(params: Params, name: str, code: list[Path]) -> dict[str, Any]:
    """Train generation ``name`` and write its files; ``code`` is the stage's source (its fingerprint)."""
    generation = params.generation(name)
    ranks = Distributed.from_environment()
    configure_determinism(params.train.deterministic)
    device = resolve_device(params.train.device)
    if ranks.world > 1:
        device = start_process_group(device)
    precision = resolve_precision(params.train.precision, device)
    prepared = load_prepared(PREPARED)
    if prepared.meta["name"] != params.data.name:
        raise DataError(f"{PREPARED}/ holds {prepared.meta['name']!r} data but data.name is "
                        f"{params.data.name!r}: run `dvc repro prepare`")
    domain = make_domain(prepared, params.train, device, precision, storage=params.data.storage)
    check_fits_data(params, [name], domain.task, has_validation="valid" in domain.eval_splits)

    def build(arch: str, options: dict[str, Any], key: str = "model") -> nn.Module:
        model = build_model(arch, options, key, **domain.data_arguments())
        signature = domain.signature()
        if is_import_path(arch) and domain.task == "image":
            check_output(model, arch, key, torch.zeros(2, *signature["shape"]), signature["classes"])
        return domain.prepare_model(model)

    kd = generation.kd
    torch.manual_seed(generation.seed)
    model = build(generation.arch, generation.options, params.network_key(name))
    if generation.checkpoint is not None:
        return evaluate_outside_teacher(model, generation, domain, precision, device, ranks)
    teacher = load_teacher(generation, domain, build)
    log.info("%s: %s %s, %s parameters, teacher %s, kd.mode %s, %s on %s",
             name, generation.arch, generation.options, f"{count_parameters(model):,}",
             generation.teacher if teacher is not None else "none",
             kd.mode if generation.teacher else "-", precision, device)
    trainable = distribute(model, device, ranks.world)
    if params.train.compile:  # the teacher too: its forward is about a third of a distillation step
        trainable = torch.compile(trainable)
        teacher = torch.compile(teacher) if teacher is not None else None
    trainer = Trainer(trainable, domain, params.train, kd, seed=generation.seed, device=device,
                      precision=precision, generation=name, teacher=teacher, rank=ranks.rank,
                      world=ranks.world)
    digest = training_fingerprint(params, generation, device, precision, code)
    state = state_path(name, digest)
    history = resume(trainer, state, digest, ranks.world)
    interrupt.install()
    try:
        with explain_refusals(precision):
            run_with_logging(trainer, state, digest, history, ranks)
            splits = trainer.final_predictions()  # every rank: a resumed finished run evaluates together
        metrics = write_outputs(splits, unwrap(trainer.model), domain, generation, history, precision, device,
                                history[-1].get(history_name("analysis", TEACHER_TRUE_PROB))) \
            if ranks.is_main else {}
        wait_for_all(ranks.world)
        if ranks.is_main:
            remove_state(state)
        return metrics
    except interrupt.SignalReceived as stop:
        raise interrupt.Interrupted(stopped_message(name, stop, len(history), state), stop.signum) from None


def evaluate_outside_teacher(model: nn.Module, generation: Generation, domain: Domain, precision: str,
                             device: torch.device, ranks: Distributed) -> dict[str, Any]:
    """gen0 from ``teacher.checkpoint``: loaded, evaluated on every split (the training data as prepared
    included, for its training error and the true-class probability its students will learn from), and
    written as a trained teacher is."""
    state, form = read_weights(generation.checkpoint)
    data = ", ".join(f"{key} {value}" for key, value in domain.signature().items() if key != "task")
    load_weights(model, state, generation.checkpoint, generation.arch, data)
    log.info("%s: %s loaded from %s (%s), %s parameters; evaluating it, not training",
             generation.name, generation.arch, generation.checkpoint, form, f"{count_parameters(model):,}")
    train = domain.predict(model, "train")
    splits = {split: domain.predict(model, split) for split in domain.eval_splits}
    record: dict[str, Any] = {"epoch": 0, history_name("train", "error"): train.error}
    for split, predictions in splits.items():
        record.update({history_name(split, "error"): predictions.error,
                       history_name(split, "nll"): predictions.nll})
    if not ranks.is_main:
        return {}
    live = open_live(generation.name)
    log_epoch(live, record)
    live.end()
    true_prob = float(train.target_prob.double().mean())
    return write_outputs(splits, model, domain, generation, [record], precision, device, true_prob)


def stopped_message(name: str, stop: interrupt.SignalReceived, epochs_saved: int, state: Path) -> str:
    if not epochs_saved:
        return f"{name}: stopped by {stop} before the first epoch ended; run the same command to start again"
    return (f"{name}: stopped by {stop}; epochs 1-{epochs_saved} are saved in {state}: "
            "run the same command (or `dvc repro`) to resume")


def load_teacher(generation: Generation, domain: Domain, build: Any) -> nn.Module | None:
    """The frozen teacher of ``generation``, if its objective reads one (``learns_from_teacher``)."""
    if not learns_from_teacher(generation):
        return None
    return load_model(model_path(generation.teacher), f"stage {stage_name(generation.teacher)} (dvc repro)",
                      domain.signature(), build)


def training_fingerprint(params: Params, generation: Generation, device: torch.device, precision: str,
                         code: list[Path]) -> str:
    """What shapes the saved state: settings, the resolved device and precision, data, teacher, code (the
    stage's own and what its params select)."""
    settings = {"generation": dataclasses.asdict(generation), "train": dataclasses.asdict(params.train),
                "device": describe_device(device), "precision": precision,
                "code": [path.as_posix() for path in code]}  # the generation's record holds its kd
    sources = generation_sources(params, generation.name)
    settings["packages"] = list(sources.packages)
    files = [*prepared_files(PREPARED), *(ROOT / path for path in (*code, *sources.files))]
    if learns_from_teacher(generation):
        files.append(model_path(generation.teacher))
    for key in ("nproc", "nnodes"):  # the same run on more processes or nodes continues the same state
        settings["train"].pop(key)
    return fingerprint(settings, files)


def resume(trainer: Trainer, state: Path, digest: str, world: int) -> list[dict[str, Any]]:
    """Continue from the last completed epoch when this training saved its state before."""
    saved = load_state(state, digest, trainer.generation, world)
    if saved is None:
        return []
    trainer.load_state_dict(saved["trainer"])
    log.info("%s: resuming after epoch %d from %s", trainer.generation, trainer.epoch, state)
    return saved["history"]


def run_with_logging(trainer: Trainer, state: Path, digest: str, history: list[dict[str, Any]],
                     ranks: Distributed) -> None:
    name = trainer.generation
    # DVC removes a stage's outputs before running it, so the DVCLive files are
    # rebuilt from the saved history: a resumed run logs the same steps as an uninterrupted one.
    live = open_live(name) if ranks.is_main else None
    for record in history if live is not None else []:
        log_epoch(live, record)
    unit = trainer.domain.unit

    def on_epoch(report: EpochReport) -> None:
        with interrupt.protected():  # the history, the DVCLive files and the state advance together
            history.append(epoch_record(report))
            trainer_state = trainer.state_dict()  # every rank: it gathers each rank's random generators
            if not ranks.is_main:
                return
            try:
                log_epoch(live, history[-1])
            except OSError as error:
                raise BanError(f"could not write {live_dir(name)}/: {error.strerror or error}") from None
            save_state(state, digest, trainer_state, history)
            # after the save: an epoch shown is an epoch a stopped run resumes after
            print(progress_line(name, report, trainer.settings.epochs, unit), flush=True)

    trainer.run(on_epoch)
    if live is not None:
        live.end()


def open_live(name: str) -> Any:
    """The DVCLive logger of rank 0, the only rank that logs: DVCLive and the DVC repository it opens take
    about a second to load, which the other ranks skip."""
    live = import_optional("dvclive", "pipeline", "logging a generation's metrics to DVCLive")
    return live.Live(dir=str(live_dir(name)), dvcyaml=False, save_dvc_exp=False)


def log_epoch(live: Any, record: dict[str, Any]) -> None:
    for key, value in record.items():
        if key != "epoch":
            live.log_metric(key, value)
    live.next_step()


def epoch_record(report: EpochReport) -> dict[str, Any]:
    record = {"epoch": report.epoch, "lr": report.lr, history_name("train", "loss"): report.train_loss,
              history_name("train", "error"): report.train_error}
    record.update({history_name("train", f"loss_{k}"): v for k, v in report.losses.items()})
    for split, figures in report.eval.items():
        record.update({history_name(split, k): v for k, v in figures.items()})
    record.update({history_name("analysis", k): v for k, v in report.analysis.items()})
    return record


def progress_line(name: str, report: EpochReport, epochs: int, unit: str) -> str:
    figures = [f"{name} epoch {report.epoch:>3}/{epochs}", f"loss {report.train_loss:.4f}",
               f"train err {report.train_error:5.2f}%"]
    for split, values in report.eval.items():
        figures.append(f"{split} err {values['error']:5.2f}% nll {values['nll']:.4f}")
    figures += [f"lr {report.lr:.4g}", f"{report.examples_per_s:,.0f} {unit}/s", f"{report.seconds:.1f}s"]
    return "  ".join(figures)


def write_outputs(splits: dict[str, Predictions], model: nn.Module, domain: Domain, generation: Generation,
                  history: list[dict[str, Any]], precision: str, device: torch.device,
                  teacher_true_prob: float | None) -> dict[str, Any]:
    """The checkpoint, the predictions of every evaluated split (the last epoch's) and the metrics."""
    name, task = generation.name, TASKS.get(domain.task, "task")
    figures: dict[str, float] = {}
    for split, predictions in splits.items():
        figures.update(task.split_metrics(split, predictions.error, predictions.nll))
    last_train_error = history[-1][history_name("train", "error")]
    epochs = len(history) if generation.checkpoint is None else 0
    metrics = GenerationMetrics(count_parameters(model), epochs, last_train_error, figures, precision,
                                device_label(device), teacher_true_prob)
    save_model(model, model_path(name), generation=name, arch=generation.arch, options=generation.options,
               data_signature=domain.signature())
    record = GenerationPredictions(name, generation.teacher, task.name, metrics, history, splits,
                                   reads_teacher=learns_from_teacher(generation))
    save_torch(record.to_dict(), predictions_path(name))
    save_json(metrics.figures(), metrics_path(name))
    return metrics.to_dict()
