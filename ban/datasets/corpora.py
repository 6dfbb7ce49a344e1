"""Word-level text corpora (Penn Treebank and the like) turned into token streams.

Conventions (those of Zaremba et al. and PyTorch's word_language_model):

* a corpus is three UTF-8 files, one sentence per line; every line is split on
  whitespace and ends with an ``<eos>`` token;
* the vocabulary comes from the training file alone, in order of first
  occurrence; ``<unk>`` is appended if the training file lacks it, and words of
  the validation and test files missing from it become ``<unk>``;
* characters for character-aware models: id 0 pads, 1 and 2 mark the beginning and
  end of a word (as in Kim et al.), ``<eos>`` and ``<unk>`` are one symbol each and
  every other word is spelled letter by letter; the character vocabulary is the
  sorted set of symbols.  ``word_chars`` rows are as long as the longest word + 2.

Datasets: ``ptb`` reads ``ptb.{train,valid,test}.txt`` (Mikolov's preprocessed Penn Treebank,
downloadable); ``text`` reads ``{train,valid,test}.txt`` for any other corpus in the same format
(never downloaded). ``data.train_subset`` keeps the first tokens of the training stream.
"""

from __future__ import annotations

import shutil
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import torch

from ban.core.config import DataConfig, Params
from ban.core.errors import ConfigError, DataError
from ban.data.prepared import Prepared
from ban.datasets import DATASETS, DataFacts, Dataset

SPLITS = ("train", "valid", "test")
EOS, UNK = "<eos>", "<unk>"
PAD, BOW, EOW = "<pad>", "<bow>", "<eow>"
WORD_SYMBOLS = (EOS, UNK)  # tokens the character model sees as one symbol, not spelled out
PTB_URL = "https://raw.githubusercontent.com/tomsercu/lstm/master/data/{file}"
DOWNLOAD_TIMEOUT_S = 60


@dataclass(frozen=True)
class Corpus:
    """Where a corpus's files are named and, if anywhere, fetched from."""

    file_pattern: str  # formatted with split=...
    url_pattern: str | None  # formatted with file=...; None: not downloadable

    def path(self, root: Path, split: str) -> Path:
        return root / self.file_pattern.format(split=split)


CORPORA = {
    "ptb": Corpus("ptb.{split}.txt", PTB_URL),
    "text": Corpus("{split}.txt", None),
}
PTB_TOKENS = {"train": 929_589, "valid": 73_760, "test": 82_430}


def prepare(data: DataConfig) -> Prepared:
    return prepare_corpus(data.name, data.root, download=data.download, train_tokens=data.train_subset)


def prepare_corpus(
    name: str, root: str | Path, *, download: bool, train_tokens: int | None = None
) -> Prepared:
    """Read the three splits of corpus ``name`` from ``root`` into the lm prepared format.

    ``train_tokens`` keeps only the first tokens of the training stream (a quick run); the
    vocabulary still comes from the whole training file, so validation and test perplexities
    are over the same words as a full run.
    """
    corpus = CORPORA[name]
    root = Path(root)
    if download:
        _download_missing(name, corpus, root)
    tokens = {split: read_tokens(corpus.path(root, split)) for split in SPLITS}
    vocab = build_vocab(tokens["train"])
    index = {word: i for i, word in enumerate(vocab)}
    streams = {split: encode(words, index) for split, words in tokens.items()}
    streams["train"] = streams["train"][:train_tokens]
    for split in ("valid", "test"):
        _check_overlap(streams[split], index, corpus.path(root, split))
    chars, word_chars = char_vocabulary(vocab)
    meta = {"task": "lm", "name": name, "vocab": vocab, "chars": chars}
    return Prepared(meta, {**streams, "word_chars": word_chars})


def _download_missing(name: str, corpus: Corpus, root: Path) -> None:
    """Fetch the splits not already in ``root``; files present are trusted as they are."""
    if corpus.url_pattern is None:
        files = ", ".join(corpus.path(root, split).name for split in SPLITS)
        raise ConfigError(f"data.download: corpus {name!r} cannot be downloaded; put {files} in {root}/")
    root.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        path = corpus.path(root, split)
        if not path.exists():
            _fetch(corpus.url_pattern.format(file=path.name), path)


def _fetch(url: str, path: Path) -> None:
    """Download through a ``.part`` file so that an interrupted fetch never looks complete."""
    partial = path.with_name(path.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response, partial.open("wb") as out:
            shutil.copyfileobj(response, out)
    except OSError as error:  # URLError, timeouts and disk errors alike
        partial.unlink(missing_ok=True)
        hint = f"copy {path.name} into {path.parent}/ by hand"
        raise DataError(f"cannot download {url} ({error}): {hint}") from None
    partial.replace(path)


def read_tokens(path: Path) -> list[str]:
    """Whitespace-split words of every line, each line closed by ``<eos>``."""
    if not path.is_file():
        raise DataError(
            f"{path.name} not found in {path.parent}/: put the corpus files there "
            f"(`data.download: true` fetches PTB)"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: not UTF-8 text (bad byte at offset {error.start})") from None
    except OSError as error:
        raise DataError(f"{path}: cannot be read ({error.strerror})") from None
    lines = text.split("\n")
    if lines[-1] == "":  # the newline ending the last line opens no new line
        lines.pop()
    tokens = [word for line in lines for word in (*line.split(), EOS)]
    if len(tokens) == len(lines):
        raise DataError(f"{path}: no words (the file is empty or blank)")
    return tokens


def build_vocab(train_tokens: list[str]) -> list[str]:
    """Training words in order of first occurrence, with ``<unk>`` last if it never occurs."""
    vocab = list(dict.fromkeys(train_tokens))
    if UNK not in vocab:
        vocab.append(UNK)
    return vocab


def encode(tokens: list[str], index: dict[str, int]) -> torch.Tensor:
    """Token ids (int64), mapping words outside the vocabulary to ``<unk>``."""
    unk = index[UNK]
    return torch.tensor([index.get(word, unk) for word in tokens], dtype=torch.int64)


def _check_overlap(stream: torch.Tensor, index: dict[str, int], path: Path) -> None:
    """A split whose every word is ``<unk>`` leaves nothing to evaluate: likely the wrong file."""
    if torch.isin(stream, torch.tensor([index[EOS], index[UNK]])).all():
        raise DataError(f"{path}: none of its words is in the training vocabulary; is it the same corpus?")


def spell(word: str) -> list[str]:
    """The character symbols of ``word``: special tokens are a single symbol each."""
    return [word] if word in WORD_SYMBOLS else list(word)


def char_vocabulary(vocab: list[str]) -> tuple[list[str], torch.Tensor]:
    """Symbol list (index = char id) and ``word_chars`` [len(vocab), longest word + 2]."""
    spellings = [spell(word) for word in vocab]
    chars = [PAD, BOW, EOW, *sorted({symbol for spelling in spellings for symbol in spelling})]
    char_id = {symbol: i for i, symbol in enumerate(chars)}
    word_chars = torch.zeros(len(vocab), max(map(len, spellings)) + 2, dtype=torch.int64)
    for row, spelling in enumerate(spellings):
        ids = [char_id[BOW], *(char_id[symbol] for symbol in spelling), char_id[EOW]]
        word_chars[row, : len(ids)] = torch.tensor(ids)
    return chars, word_chars


def check(data: DataConfig) -> None:
    if data.validation is not None:
        raise ConfigError("data.validation: text corpora come with their own validation file; set it to null")


def missing(data: DataConfig, root: Path) -> str | None:
    corpus = CORPORA[data.name]
    if data.download and corpus.url_pattern is not None:
        return None
    absent = [corpus.path(root, split).name for split in SPLITS if not corpus.path(root, split).is_file()]
    return f"{root}/ lacks {', '.join(absent)}" if absent else None


def ptb_facts(params: Params) -> DataFacts:
    """Mikolov's PTB: 10k words; 51 character symbols, words of up to 19 letters."""
    word_chars = torch.zeros(10_000, 21, dtype=torch.int64)
    word_chars[:, 1] = 50
    evaluated = PTB_TOKENS["valid"] + PTB_TOKENS["test"]
    return DataFacts((params.train.bptt,), {"vocab_size": 10_000, "word_chars": word_chars},
                     params.data.train_subset or PTB_TOKENS["train"], evaluated)


DATASETS.register(Dataset(name="ptb", task="lm", reads="ptb.{train,valid,test}.txt (Mikolov's Penn Treebank)",
                          prepare=prepare, facts=ptb_facts, check=check, missing=missing))
DATASETS.register(Dataset(name="text", task="lm", reads="{train,valid,test}.txt of any corpus in that format",
                          prepare=prepare, facts=lambda params: None, check=check, missing=missing))
