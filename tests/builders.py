"""What tests build: data files in their real on-disk formats, tiny networks, free ports, a hand softmax.

Test modules share these through this module, never by importing each other.
"""

from __future__ import annotations

import math
import pickle
import random
import socket
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ban.core.config import TrainConfig
from ban.datasets.corpora import prepare_corpus
from ban.nets import build_model
from ban.training.domains.text import TextDomain

CPU = torch.device("cpu")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def softmax(row: list[float], temperature: float = 1.0) -> list[float]:
    exps = [math.exp(v / temperature) for v in row]
    return [e / sum(exps) for e in exps]


# --- CIFAR in torchvision's on-disk layout -------------------------------------------------------

CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
PER_BATCH = 20  # images in each written CIFAR batch file


def write_pickle(path: Path, content: dict) -> None:
    # The official files are Python 2 pickles with str keys; torchvision decodes them (latin1) to
    # str keys, which is exactly what a Python 3 pickle of str keys gives back.
    with path.open("wb") as handle:
        pickle.dump(content, handle, protocol=2)


def random_batch(rng: np.random.Generator, classes: int) -> tuple[np.ndarray, list[int]]:
    return rng.integers(0, 256, (PER_BATCH, 3072), dtype=np.uint8), rng.integers(
        0, classes, PER_BATCH
    ).tolist()


def write_cifar10(root: Path) -> dict[str, tuple[np.ndarray, list[int]]]:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    batches = {
        file: random_batch(rng, 10) for file in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    }
    for file, (data, labels) in batches.items():
        write_pickle(folder / file, {"batch_label": file, "data": data, "labels": labels})
    write_pickle(folder / "batches.meta", {"label_names": CIFAR10_NAMES, "num_vis": 3072})
    return batches


def write_cifar100(root: Path) -> tuple[dict[str, tuple[np.ndarray, list[int]]], list[str]]:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    splits = {file: random_batch(rng, 100) for file in ("train", "test")}
    for file, (data, labels) in splits.items():
        write_pickle(folder / file, {"data": data, "fine_labels": labels, "coarse_labels": [0] * PER_BATCH})
    names = [f"fine{i:02d}" for i in range(100)]
    write_pickle(folder / "meta", {"fine_label_names": names, "coarse_label_names": ["c"] * 20})
    return splits, names


# --- Penn Treebank files and tiny language models ------------------------------------------------

TINY_LSTM = {"arch": "lstm", "hidden": 12, "layers": 2, "dropout": 0.0}
NOUNS = ["cat", "dog", "bird", "fish", "mouse", "horse"]
VERBS = ["sees", "eats", "likes", "chases"]


def sentence(rng: random.Random) -> str:
    """A toy grammar: predictable enough for a tiny model to beat the uniform distribution."""
    words = ["the", rng.choice(NOUNS), rng.choice(VERBS), rng.choice(["the", "a"]), rng.choice(NOUNS)]
    if rng.random() < 0.3:
        words += ["on", "N", "days"]
    return " " + " ".join(words) + " \n"  # PTB's layout: a leading and a trailing space


def write_grammar_corpus(root: Path, lines: dict[str, int] | None = None, seed: int = 0) -> Path:
    """``ptb.{train,valid,test}.txt`` in the real format, with the given number of lines each."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    for split, count in (lines or {"train": 300, "valid": 60, "test": 60}).items():
        (root / f"ptb.{split}.txt").write_text("".join(sentence(rng) for _ in range(count)))
    return root


def text_domain(corpus: Path, **train: Any) -> TextDomain:
    settings = {"batch_size": 4, "bptt": 5, "precision": "fp32", **train}
    return TextDomain(prepare_corpus("ptb", corpus, download=False), TrainConfig(**settings), CPU, "fp32")


def tiny_language_model(text: TextDomain, seed: int = 0,
                        options: dict[str, Any] | None = None) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = dict(options or TINY_LSTM)
    return text.prepare_model(build_model(model.pop("arch"), model, **text.data_arguments()))


# --- tiny image networks ------------------------------------------------------------------------


def tiny_conv_net(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 64, 10))
