"""Language modelling: contiguous token streams cut into BPTT windows, the hidden state carried across them.

Training reads the train stream batchified into ``train.batch_size`` rows, window by
window (``train.bptt`` tokens), in the same order every epoch: shuffling would break the
state carried from one window to the next. Each window's logits ``[B, T, V]`` and targets
``[B, T]`` are flattened to ``[B*T, V]`` and ``[B*T]``, so the engine and the objectives see
per-token examples, distilled token by token.

Evaluation always uses ``EVAL_ROWS`` rows (the convention of PyTorch's word-language-model
example), whatever ``train.eval_batch_size`` says: that setting sizes image batches, and
each row of a stream starts from a zero state and drops up to ``rows - 1`` final tokens,
so a fixed, small row count keeps perplexities comparable between runs. Evaluation windows are
``EVAL_STEPS`` long whatever ``train.bptt`` is: the state is carried exactly, so only the number of
calls changes (fewer, larger matrix products: about 1.4x faster on a CPU).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from ban.core.config import TrainConfig
from ban.core.errors import ConfigError, DataError
from ban.data.prepared import Prepared
from ban.data.streams import batchify, bptt_batches, bptt_windows
from ban.nets.lstm import detach_state
from ban.predictions import Predictions
from ban.tasks import check_storage
from ban.training.checkpoint import unwrap
from ban.training.device import autocast, to_device
from ban.training.domain import DOMAINS, Batch, DomainType

EVAL_ROWS = 10
EVAL_STEPS = 350


class TextDomain:
    task = "lm"
    unit = "tok"
    eval_splits = ("valid", "test")

    def __init__(self, prepared: Prepared, train: TrainConfig, device: torch.device, precision: str, *,
                 storage: str = "memory") -> None:
        check_storage(storage, self.task)  # the token streams are small: always in memory
        self.device, self.precision, self.bptt = device, precision, train.bptt
        self.vocab: list[str] = prepared.meta["vocab"]
        self.word_chars = prepared.tensors["word_chars"]
        splits = ("train", *self.eval_splits)
        self.streams = to_device({split: prepared.tensors[split] for split in splits}, device)
        self.train_rows = rows(self.streams["train"], train.batch_size, "train (rows: train.batch_size)")

    def data_arguments(self) -> dict[str, Any]:
        return {"vocab_size": len(self.vocab), "word_chars": self.word_chars}

    def signature(self) -> dict[str, Any]:
        """The vocabulary's size and checksum: a checkpoint is refused on any other vocabulary."""
        return {"task": self.task, "vocab": len(self.vocab),
                "vocab_crc32": zlib.crc32("\n".join(self.vocab).encode())}

    def prepare_model(self, model: nn.Module) -> nn.Module:
        return model.to(self.device)

    def train_batches(self, generator: torch.Generator, rank: int = 0, world: int = 1) -> Iterator[Batch]:
        """Every window of the train rows in stream order (``generator`` is unused: nothing is random).

        Each of ``world`` processes takes every ``world``-th row, so together they read the
        stream exactly as a single process does; a window's tokens are numbered row by row
        over all rows (``positions``), as one process flattens them.
        """
        rows = len(self.train_rows)
        if rows % world:
            raise ConfigError(f"train.batch_size: {rows} rows cannot be shared equally by "
                              f"{world} processes; use a multiple of {world}")
        mine = torch.arange(rank, rows, world, device=self.device)
        for inputs, targets in bptt_batches(self.train_rows[rank::world], self.bptt):
            steps = inputs.shape[1]
            positions = (mine[:, None] * steps + torch.arange(steps, device=self.device)).reshape(-1) \
                if world > 1 else None
            yield Batch(inputs, targets.reshape(-1), global_size=rows * steps, positions=positions)

    def train_steps(self, world: int = 1) -> int:
        return len(bptt_windows(self.train_rows.shape[1], self.bptt))

    def runner(self, model: nn.Module) -> TextRunner:
        return TextRunner(model, self.device)

    @torch.inference_mode()
    def predict(self, model: nn.Module, split: str) -> Predictions:
        """Per-token probability of the true next word and the predicted word, in stream order."""
        was_training = model.training
        model.eval()
        stream = rows(self.streams[split], EVAL_ROWS, split)
        runner = self.runner(model)
        runner.reset(len(stream))
        log_probs, argmax = [], []
        for inputs, targets in bptt_batches(stream, EVAL_STEPS):
            with autocast(self.device, self.precision):
                logits = runner(Batch(inputs, targets.reshape(-1), global_size=targets.numel())).float()
            true_log_prob = torch.log_softmax(logits, dim=1).gather(1, targets.reshape(-1, 1))
            log_probs.append(true_log_prob.view(len(stream), -1))
            argmax.append(logits.argmax(1).view(len(stream), -1))
        model.train(was_training)
        target_prob = torch.cat(log_probs, dim=1).exp().reshape(-1).cpu()
        return Predictions(target_prob, torch.cat(argmax, dim=1).reshape(-1).cpu(),
                           stream[:, 1:].reshape(-1).cpu(), None)


def rows(stream: torch.Tensor, count: int, what: str) -> torch.Tensor:
    """``batchify`` with the split (and the setting that sizes it) named in the error."""
    try:
        return batchify(stream, count)
    except DataError as error:
        raise DataError(f"{what}: {error}") from None


class TextRunner:
    """One network's hidden state, carried from window to window and detached after each (truncated BPTT).

    The teacher and the student each get their own runner, so their states never mix.
    """

    def __init__(self, model: nn.Module, device: torch.device) -> None:
        self.model, self.device = model, device
        self.state: tuple[torch.Tensor, torch.Tensor] | None = None  # None: zeros of the first batch's size

    def reset(self, batch_size: int) -> None:
        self.state = unwrap(self.model).initial_state(batch_size, self.device)

    def __call__(self, batch: Batch) -> torch.Tensor:
        """Logits flattened to ``[B*T, V]``, row-major like ``batch.targets``."""
        logits, state = self.model(batch.inputs, self.state)
        self.state = detach_state(state)
        return logits.reshape(-1, logits.shape[-1])


DOMAINS.register(DomainType("lm", TextDomain))
