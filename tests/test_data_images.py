"""Image dataset preparation: digits, CIFAR from tiny files in the official layout, image folders."""

from __future__ import annotations

import shutil
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.datasets.cifar
from builders import CIFAR10_NAMES, PER_BATCH, write_cifar10, write_cifar100
from PIL import Image
from sklearn.datasets import load_digits

from ban.core.config import params_from_mapping
from ban.core.errors import ConfigError, DataError
from ban.data.images import channel_stats, stratified_subset
from ban.datasets import DATASETS, prepare_dataset


def prepare(name: str, root: Path | str = "unused", **options: object):
    """What the prepare stage makes of ``data: {name, root, **options}`` in params.yaml."""
    data = params_from_mapping({"data": {"name": name, "root": str(root), **options}}).data
    return prepare_dataset(data)


# --- digits ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits():
    return prepare("digits")


def test_digits_shapes_and_split_sizes(digits):
    tensors = digits.tensors
    assert tensors["train_x"].shape == (1347, 1, 8, 8) and tensors["test_x"].shape == (450, 1, 8, 8)
    assert len(tensors["train_y"]) + len(tensors["test_y"]) == 1797
    assert tensors["train_x"].dtype == torch.uint8 and tensors["train_y"].dtype == torch.int64
    assert all(tensor.is_contiguous() for tensor in tensors.values())
    assert digits.meta["classes"] == [str(digit) for digit in range(10)]
    assert digits.meta["shape"] == [1, 8, 8] and digits.meta["task"] == "image"


def test_digits_pixels_are_the_scaled_originals(digits):
    source = load_digits().images
    scaled = np.vectorize(lambda v: round(v * 255 / 16))(source).astype(np.uint8)
    ours = torch.cat([digits.tensors["train_x"], digits.tensors["test_x"]]).numpy()
    assert sorted(image.tobytes() for image in ours) == sorted(image.tobytes() for image in scaled)
    assert ours.min() == 0 and ours.max() == 255 and 128 in ours  # 8 -> 127.5 rounds to 128


def test_digits_split_is_stratified(digits):
    train_counts = torch.bincount(digits.tensors["train_y"], minlength=10)
    test_counts = torch.bincount(digits.tensors["test_y"], minlength=10)
    for train, test in zip(train_counts.tolist(), test_counts.tolist(), strict=True):
        assert abs(test - 0.25 * (train + test)) <= 1


def test_digits_split_depends_only_on_the_seed(digits):
    again, other = prepare("digits"), prepare("digits", seed=1)
    for key, tensor in digits.tensors.items():
        assert torch.equal(again.tensors[key], tensor)
    assert not torch.equal(other.tensors["test_x"], digits.tensors["test_x"])


def test_digits_test_fraction():
    half = prepare("digits", test_fraction=0.5)
    assert len(half.tensors["test_y"]) == 899 and len(half.tensors["train_y"]) == 898
    for fraction in (0.0, 1.0, 0.001):
        with pytest.raises(ConfigError, match="data.test_fraction"):
            prepare("digits", test_fraction=fraction)


# --- CIFAR ----------------------------------------------------------------------------------------


def as_images(rows: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(rows.reshape(-1, 3, 32, 32))


def test_cifar10_reads_the_official_layout(tmp_path):
    batches = write_cifar10(tmp_path)
    prepared = prepare("cifar10", tmp_path, verify=False)
    train = [batches[f"data_batch_{i}"] for i in range(1, 6)]
    tensors = prepared.tensors
    assert torch.equal(tensors["train_x"], as_images(np.concatenate([data for data, _ in train])))
    assert tensors["train_y"].tolist() == [label for _, labels in train for label in labels]
    assert torch.equal(tensors["test_x"], as_images(batches["test_batch"][0]))
    assert tensors["test_y"].tolist() == batches["test_batch"][1]
    # Each row is 1024 red, then 1024 green, then 1024 blue values, row-major.
    first = batches["data_batch_1"][0][0]
    assert tensors["train_x"][0, 2, 1, 3].item() == first[2 * 1024 + 1 * 32 + 3]
    assert prepared.meta["classes"] == CIFAR10_NAMES and prepared.meta["shape"] == [3, 32, 32]
    assert all(tensor.is_contiguous() for tensor in tensors.values())
    assert tensors["train_x"].dtype == torch.uint8 and tensors["train_y"].dtype == torch.int64


def test_cifar100_reads_fine_labels(tmp_path):
    splits, names = write_cifar100(tmp_path)
    prepared = prepare("cifar100", tmp_path, verify=False, image_size=32)
    for split in ("train", "test"):
        data, labels = splits[split]
        assert torch.equal(prepared.tensors[f"{split}_x"], as_images(data))
        assert prepared.tensors[f"{split}_y"].tolist() == labels
    assert prepared.meta["classes"] == names


def test_cifar_missing_files_say_where_to_put_what(tmp_path):
    with pytest.raises(DataError) as error:
        prepare("cifar10", tmp_path)
    message = str(error.value)
    assert f"{tmp_path}/cifar-10-batches-py/" in message and "data_batch_1" in message
    assert "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz" in message
    assert "data.download: true" in message and "\n" not in message


def test_cifar_names_only_the_missing_files(tmp_path):
    write_cifar100(tmp_path)
    (tmp_path / "cifar-100-python" / "test").unlink()
    with pytest.raises(
        DataError, match=r"cifar-100-python/ lacks test; download https://\S+cifar-100-python"
    ):
        prepare("cifar100", tmp_path, verify=False)


def test_cifar_checksums_are_verified_by_default(tmp_path):
    write_cifar10(tmp_path)
    with pytest.raises(DataError, match="do not match the official checksums.*data.verify: false"):
        prepare("cifar10", tmp_path)


def test_cifar_failed_download_is_one_clear_error(tmp_path, monkeypatch):
    def offline(url: str, *args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torchvision.datasets.cifar, "download_and_extract_archive", offline)
    with pytest.raises(DataError, match=r"could not download.*no network.*cifar-10-python\.tar\.gz"):
        prepare("cifar10", tmp_path, download=True)


def test_cifar_download_keeps_files_already_there(tmp_path, monkeypatch):
    write_cifar10(tmp_path)
    monkeypatch.setattr(torchvision.datasets.cifar, "download_and_extract_archive", pytest.fail)
    assert len(prepare("cifar10", tmp_path, download=True, verify=False).tensors["train_y"]) == 5 * PER_BATCH


# --- image folders --------------------------------------------------------------------------------


def write_png(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def write_folder(root: Path, channels: int, width: int = 6, height: int = 5) -> dict[str, np.ndarray]:
    """Two classes, three train and two test images each; returns pixels by relative path."""
    rng = np.random.default_rng(channels)
    shape = (height, width) if channels == 1 else (height, width, 3)
    written = {}
    for split, count in (("train", 3), ("test", 2)):
        for name in ("cat", "ant"):
            for index in range(count):
                relative = f"{split}/{name}/{index}.png"
                written[relative] = rng.integers(0, 256, shape, dtype=np.uint8)
                write_png(root / relative, written[relative])
    return written


def expected_split(written: dict[str, np.ndarray], split: str) -> torch.Tensor:
    """ImageFolder order: classes sorted (ant, cat), then file names sorted."""
    order = sorted(key for key in written if key.startswith(f"{split}/"))
    images = [torch.from_numpy(written[key]) for key in order]
    return torch.stack(
        [image.unsqueeze(0) if image.dim() == 2 else image.permute(2, 0, 1) for image in images]
    )


@pytest.mark.parametrize("channels", [3, 1])
def test_imagefolder_reads_pixels_and_labels(tmp_path, channels):
    written = write_folder(tmp_path, channels)
    prepared = prepare("imagefolder", tmp_path)
    for split in ("train", "test"):
        assert torch.equal(prepared.tensors[f"{split}_x"], expected_split(written, split))
    assert prepared.tensors["train_y"].tolist() == [0, 0, 0, 1, 1, 1]
    assert prepared.tensors["test_y"].tolist() == [0, 0, 1, 1]
    assert prepared.meta["classes"] == ["ant", "cat"] and prepared.meta["shape"] == [channels, 5, 6]
    assert all(tensor.is_contiguous() for tensor in prepared.tensors.values())


def test_imagefolder_one_colour_image_makes_all_rgb(tmp_path):
    written = write_folder(tmp_path, channels=1)
    write_png(tmp_path / "test/ant/9.png", np.zeros((5, 6, 3), np.uint8))
    prepared = prepare("imagefolder", tmp_path)
    assert prepared.meta["shape"] == [3, 5, 6]
    gray = torch.from_numpy(written["train/ant/0.png"])
    assert torch.equal(prepared.tensors["train_x"][0], gray.expand(3, 5, 6))


def test_imagefolder_resizes_every_image(tmp_path):
    written = write_folder(tmp_path, channels=3)
    write_png(tmp_path / "train/ant/7.png", np.zeros((9, 4, 3), np.uint8))
    prepared = prepare("imagefolder", tmp_path, image_size=4)
    assert prepared.tensors["train_x"].shape == (7, 3, 4, 4) and prepared.meta["shape"] == [3, 4, 4]
    resized = Image.fromarray(written["train/ant/0.png"]).resize((4, 4), Image.Resampling.BILINEAR)
    assert torch.equal(prepared.tensors["train_x"][0], torch.from_numpy(np.array(resized)).permute(2, 0, 1))


def test_imagefolder_sizes_must_agree_without_image_size(tmp_path):
    write_folder(tmp_path, channels=3)
    write_png(tmp_path / "test/cat/big.png", np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(DataError, match=r"differ in size .* is 6x5, .*big\.png is 8x8.*data\.image_size"):
        prepare("imagefolder", tmp_path)


def test_imagefolder_class_mismatch_lists_both_sides(tmp_path):
    write_folder(tmp_path, channels=3)
    write_png(tmp_path / "train/bee/0.png", np.zeros((5, 6, 3), np.uint8))
    write_png(tmp_path / "test/dog/0.png", np.zeros((5, 6, 3), np.uint8))
    with pytest.raises(DataError, match=r"missing in test/: bee; missing in train/: dog"):
        prepare("imagefolder", tmp_path)


def test_imagefolder_corrupt_image_is_named(tmp_path):
    write_folder(tmp_path, channels=3)
    broken = tmp_path / "train/cat/broken.png"
    broken.write_bytes(b"not a png at all")
    with pytest.raises(DataError, match=f"cannot read image {broken}"):
        prepare("imagefolder", tmp_path)


def test_imagefolder_truncated_image_is_named(tmp_path):
    write_folder(tmp_path, channels=3)
    target = tmp_path / "test/ant/0.png"
    target.write_bytes(target.read_bytes()[:60])
    with pytest.raises(DataError, match=f"cannot read image {target}"):
        prepare("imagefolder", tmp_path)


def test_imagefolder_empty_class_and_missing_split(tmp_path):
    write_folder(tmp_path, channels=3)
    (tmp_path / "train/empty").mkdir()
    with pytest.raises(DataError, match=r"train/: Found no valid file for the classes empty"):
        prepare("imagefolder", tmp_path)
    (tmp_path / "train/empty").rmdir()
    shutil.rmtree(tmp_path / "test")
    with pytest.raises(DataError, match=rf"{tmp_path}/test/ not found: .*{tmp_path}/test/<class>/<images>"):
        prepare("imagefolder", tmp_path)


# --- training subset, statistics, options ---------------------------------------------------------


def test_stratified_subset_takes_floor_or_ceil_of_each_share():
    labels = torch.tensor([0] * 50 + [1] * 30 + [2] * 20)
    keep = stratified_subset(labels, 11, 0, "data.train_subset")  # shares 5.5, 3.3, 2.2
    assert torch.bincount(labels[keep]).tolist() == [6, 3, 2]
    assert len(set(keep.tolist())) == 11 and keep.tolist() == sorted(keep.tolist())
    assert torch.equal(stratified_subset(labels, 11, 0, "data.train_subset"), keep)
    assert not torch.equal(stratified_subset(labels, 11, 1, "data.train_subset"), keep)


def test_train_subset_on_digits(digits):
    subset = prepare("digits", train_subset=100)
    labels = subset.tensors["train_y"]
    assert subset.tensors["train_x"].shape == (100, 1, 8, 8)
    shares = torch.bincount(digits.tensors["train_y"], minlength=10).double() * 100 / 1347
    counts = torch.bincount(labels, minlength=10).double()
    assert torch.all((counts == shares.floor()) | (counts == shares.ceil()))
    assert torch.equal(subset.tensors["test_x"], digits.tensors["test_x"])
    assert torch.equal(prepare("digits", train_subset=100).tensors["train_x"], subset.tensors["train_x"])


@pytest.mark.parametrize("size", [9, 1348])
def test_train_subset_out_of_range(size):
    with pytest.raises(ConfigError, match=r"data.train_subset .* from 10 .* to 1347"):
        prepare("digits", train_subset=size)


@pytest.mark.parametrize(("size", "kind"), [(True, "bool"), (10.0, "float")])
def test_train_subset_must_be_an_integer(size, kind):
    with pytest.raises(ConfigError, match=f"^data.train_subset: expected int, got {kind}"):
        prepare("digits", train_subset=size)


def test_validation_split_is_held_out_stratified_and_seeded(digits):
    held = prepare("digits", validation=200, train_subset=500)
    tensors = held.tensors
    assert tensors["valid_x"].shape == (200, 1, 8, 8) and tensors["train_x"].shape == (500, 1, 8, 8)
    shares = torch.bincount(digits.tensors["train_y"], minlength=10).double() * 200 / 1347
    counts = torch.bincount(tensors["valid_y"], minlength=10).double()
    assert torch.all((counts == shares.floor()) | (counts == shares.ceil()))
    # every validation and training image is a distinct image of the original training split
    original = {bytes(image.numpy()) for image in digits.tensors["train_x"]}
    valid = [bytes(image.numpy()) for image in tensors["valid_x"]]
    train = [bytes(image.numpy()) for image in tensors["train_x"]]
    assert set(valid) <= original and set(train) <= original and not set(valid) & set(train)
    assert torch.equal(tensors["test_x"], digits.tensors["test_x"])  # the test split is never touched
    pixels = tensors["train_x"].numpy() / 255  # statistics describe what is trained on only
    assert held.meta["mean"] == pytest.approx(pixels.mean(axis=(0, 2, 3)).tolist(), rel=1e-12)
    again = prepare("digits", validation=200, train_subset=500)
    other = prepare("digits", validation=200, seed=1)
    assert torch.equal(again.tensors["valid_x"], tensors["valid_x"])
    assert not torch.equal(other.tensors["valid_y"], tensors["valid_y"])


def test_validation_split_must_leave_images_to_train_on():
    with pytest.raises(ConfigError, match=r"^data.validation must be null or an integer from 10 .* to 1337"):
        prepare("digits", validation=1347)


def test_stats_match_numpy(digits):
    subset = prepare("digits", train_subset=50, seed=3)
    pixels = subset.tensors["train_x"].numpy() / 255
    assert subset.meta["mean"] == pytest.approx(pixels.mean(axis=(0, 2, 3)).tolist(), rel=1e-12)
    assert subset.meta["std"] == pytest.approx(pixels.std(axis=(0, 2, 3)).tolist(), rel=1e-12)
    colour = torch.randint(
        0, 256, (7, 3, 4, 5), generator=torch.Generator().manual_seed(0), dtype=torch.uint8
    )
    means, stds = channel_stats(colour)
    values = colour.numpy() / 255
    assert means == pytest.approx(values.mean(axis=(0, 2, 3)).tolist(), rel=1e-12)
    assert stds == pytest.approx(values.std(axis=(0, 2, 3)).tolist(), rel=1e-12)
    assert all(isinstance(value, float) for value in means + stds)


def test_unknown_dataset_lists_the_valid_names():
    with pytest.raises(ConfigError, match="data.name") as error:
        prepare("mnist")
    assert all(name in str(error.value) for name in DATASETS.names())


@pytest.mark.parametrize(
    ("name", "size"), [("digits", 16), ("cifar10", 28), ("imagefolder", 0), ("digits", 8.5)]
)
def test_image_size_is_checked_before_loading(name, size):
    with pytest.raises(ConfigError, match="data.image_size"):
        prepare(name, image_size=size)
