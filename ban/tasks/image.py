"""Image classification: top-1 error in percent, CIFAR-style networks."""

from __future__ import annotations

from typing import Any

from ban.tasks import TASKS, Task


def check_labels(meta: dict[str, Any], tensors: dict[str, Any]) -> str | None:
    """Labels that match their images, lie in range, and cover every class in training."""
    num_classes = len(meta["classes"])
    for split in (name[:-2] for name in tensors if name.endswith("_y")):
        labels = tensors[f"{split}_y"]
        if len(labels) != len(tensors[f"{split}_x"]):
            return f"{split} images and labels differ in count"
        if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
            return f"{split} labels outside 0..{num_classes - 1}"
    absent = sorted(set(range(num_classes)) - set(tensors["train_y"].tolist()))
    if absent:  # a network cannot learn a class it never sees; its test images would all count as errors
        return f"no training example of class {', '.join(repr(meta['classes'][index]) for index in absent)}"
    return None


TASKS.register(Task(
    name="image", metric="error", value=lambda error, nll: error, lower_is_better=True,
    model_kind="an image classifier", data_kind="an image dataset",
    reports_agreement=True, ships_validation=False,
    prepared_tensors=("train_x", "train_y", "test_x", "test_y"), check_prepared=check_labels,
    counts_flops=True, assumed_flops_per_s=100e12,  # about a tenth of an H100's bf16 peak on CIFAR networks
    streams=True,
))
