"""Text corpora: tokenisation, vocabulary, characters, errors, downloads and BPTT batching."""

from __future__ import annotations

import io
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import torch

from ban.core.config import DataConfig
from ban.core.errors import ConfigError, DataError
from ban.data.prepared import load_prepared, save_prepared
from ban.data.streams import batchify, bptt_batches, bptt_windows
from ban.datasets import prepare_dataset
from ban.datasets.corpora import PTB_URL, prepare_corpus

# PTB's own layout: a leading space, lower case, <unk> and N already in the text.
TRAIN = " the cat sat on the mat \n a dog ate N <unk> bones \n"
VALID = " the bird sat \n"
TEST = " a cat \n the zebra N \n"
VOCAB = ["the", "cat", "sat", "on", "mat", "<eos>", "a", "dog", "ate", "N", "<unk>", "bones"]
CHARS = ["<pad>", "<bow>", "<eow>", "<eos>", "<unk>", "N", *"abcdeghmnost"]
ALL_UNK = "none of its words is in the training vocabulary; is it the same corpus?"


def write_texts(
    root: Path, train: str = TRAIN, valid: str = VALID, test: str = TEST, pattern: str = "ptb.{}.txt"
) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for split, text in (("train", train), ("valid", valid), ("test", test)):
        (root / pattern.format(split)).write_text(text, encoding="utf-8")
    return root


def test_streams_vocab_from_train_and_unk_mapping(tmp_path: Path) -> None:
    prepared = prepare_corpus("ptb", write_texts(tmp_path), download=False)
    assert prepared.meta["task"] == "lm" and prepared.meta["name"] == "ptb"
    assert prepared.meta["vocab"] == VOCAB
    assert prepared.tensors["train"].tolist() == [0, 1, 2, 3, 0, 4, 5, 6, 7, 8, 9, 10, 11, 5]
    assert prepared.tensors["valid"].tolist() == [0, 10, 2, 5]  # bird -> <unk>
    assert prepared.tensors["test"].tolist() == [6, 1, 5, 0, 10, 9, 5]  # zebra -> <unk>
    assert all(prepared.tensors[split].dtype == torch.int64 for split in ("train", "valid", "test"))


def test_unk_appended_when_train_lacks_it_and_blank_lines_give_eos(tmp_path: Path) -> None:
    root = write_texts(tmp_path, train=" b a\n\n a\n", valid=" c a\n")
    prepared = prepare_corpus("ptb", root, download=False)
    assert prepared.meta["vocab"] == ["b", "a", "<eos>", "<unk>"]
    assert prepared.tensors["train"].tolist() == [0, 1, 2, 2, 1, 2]
    assert prepared.tensors["valid"].tolist() == [3, 1, 2]


def test_generic_text_corpus_and_last_line_without_newline(tmp_path: Path) -> None:
    root = write_texts(tmp_path, train="x y\ny", valid="y", test="x", pattern="{}.txt")
    prepared = prepare_corpus("text", root, download=False)
    assert prepared.meta["vocab"] == ["x", "y", "<eos>", "<unk>"]
    assert prepared.tensors["train"].tolist() == [0, 1, 2, 1, 2]
    assert prepared.tensors["test"].tolist() == [0, 2]


def test_chars_and_word_chars(tmp_path: Path) -> None:
    prepared = prepare_corpus("ptb", write_texts(tmp_path), download=False)
    chars, word_chars = prepared.meta["chars"], prepared.tensors["word_chars"]
    assert chars == CHARS
    assert word_chars.dtype == torch.int64 and word_chars.shape == (len(VOCAB), 7)  # "bones" + 2 markers
    assert word_chars[VOCAB.index("cat")].tolist() == [1, 8, 6, 17, 2, 0, 0]
    assert word_chars[VOCAB.index("bones")].tolist() == [1, 7, 15, 14, 10, 16, 2]
    assert word_chars[VOCAB.index("<eos>")].tolist() == [1, 3, 2, 0, 0, 0, 0]
    assert word_chars[VOCAB.index("<unk>")].tolist() == [1, 4, 2, 0, 0, 0, 0]


def test_prepared_round_trip(tmp_path: Path) -> None:
    prepared = prepare_corpus("ptb", write_texts(tmp_path / "raw"), download=False)
    save_prepared(tmp_path / "prepared", prepared)
    loaded = load_prepared(tmp_path / "prepared")
    assert loaded.meta == prepared.meta
    assert all(torch.equal(loaded.tensors[k], v) for k, v in prepared.tensors.items())


def test_missing_file_names_file_directory_and_download(tmp_path: Path) -> None:
    root = write_texts(tmp_path)
    (root / "ptb.test.txt").unlink()
    with pytest.raises(DataError) as error:
        prepare_corpus("ptb", root, download=False)
    assert str(error.value) == (
        f"ptb.test.txt not found in {root}/: put the corpus files there (`data.download: true` fetches PTB)"
    )


@pytest.mark.parametrize(
    ("split", "content", "message"),
    [
        ("valid", b"", "no words (the file is empty or blank)"),
        ("train", b" \n\n  \n", "no words (the file is empty or blank)"),
        ("test", b" caf\xe9 \n", "not UTF-8 text (bad byte at offset 4)"),
        ("valid", b" zebra giraffe \n", ALL_UNK),
        ("test", b" <unk> \n", ALL_UNK),
    ],
)
def test_unusable_files(tmp_path: Path, split: str, content: bytes, message: str) -> None:
    root = write_texts(tmp_path)
    path = root / f"ptb.{split}.txt"
    path.write_bytes(content)
    with pytest.raises(DataError) as error:
        prepare_corpus("ptb", root, download=False)
    assert str(error.value) == f"{path}: {message}"


def test_undownloadable_corpus_and_a_validation_split(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^data\.validation: text corpora come with their own validation"):
        prepare_dataset(DataConfig(name="ptb", root=str(tmp_path), validation=100))
    with pytest.raises(ConfigError, match=r"^data\.download: corpus 'text' cannot be downloaded"):
        prepare_corpus("text", write_texts(tmp_path, pattern="{}.txt"), download=True)


def test_download_fetches_only_missing_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fetched = []

    def fake_urlopen(url: str, timeout: float) -> io.BytesIO:
        fetched.append(url)
        return io.BytesIO(TEST.encode())

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    root = write_texts(tmp_path / "ptb")
    (root / "ptb.test.txt").unlink()
    prepared = prepare_corpus("ptb", root, download=True)
    assert fetched == [PTB_URL.format(file="ptb.test.txt")]
    assert fetched[0] == "https://raw.githubusercontent.com/tomsercu/lstm/master/data/ptb.test.txt"
    assert (root / "ptb.test.txt").read_text() == TEST
    assert prepared.tensors["test"].tolist() == [6, 1, 5, 0, 10, 9, 5]


def test_download_failure_leaves_no_partial_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(url: str, timeout: float) -> io.BytesIO:
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    root = tmp_path / "new"
    with pytest.raises(DataError) as error:
        prepare_corpus("ptb", root, download=True)
    url = PTB_URL.format(file="ptb.train.txt")
    assert str(error.value) == (
        f"cannot download {url} (<urlopen error no route to host>): copy ptb.train.txt into {root}/ by hand"
    )
    assert list(root.iterdir()) == []


def test_batchify_layout() -> None:
    assert batchify(torch.arange(11), 3).tolist() == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    with pytest.raises(DataError, match="^a stream of 5 tokens is too short for batch size 3$"):
        batchify(torch.arange(5), 3)


def test_bptt_windows_exact() -> None:
    assert bptt_windows(10, 4) == [(0, 4), (4, 4), (8, 1)]
    assert bptt_windows(9, 4) == [(0, 4), (4, 4)]
    assert bptt_windows(2, 35) == [(0, 1)]
    with pytest.raises(ValueError):
        bptt_windows(10, 0)


@pytest.mark.parametrize("bptt", [1, 3, 4, 13])
def test_bptt_batches_cover_stream_once_with_shifted_targets(bptt: int) -> None:
    batched = batchify(torch.arange(50), 4)  # [4, 12]
    pairs = list(bptt_batches(batched, bptt))
    assert torch.equal(torch.cat([inputs for inputs, _ in pairs], dim=1), batched[:, :-1])
    assert torch.equal(torch.cat([targets for _, targets in pairs], dim=1), batched[:, 1:])
    assert all(torch.equal(targets, inputs + 1) for inputs, targets in pairs)
    assert [inputs.shape[1] for inputs, _ in pairs] == [length for _, length in bptt_windows(12, bptt)]
