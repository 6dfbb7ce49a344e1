"""The storage benchmarks run and report what they say: throughput of both storages, the prepare stage's
own peak memory and prepared bytes, a streaming process's memory."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from bench import prepare_memory, stream_speed


def test_stream_speed_interleaves_both_storages():
    args = argparse.Namespace(arch="resnet", options={"depth": 8, "width": 4}, batch_size=8, size=8, steps=2,
                              rounds=3, device="cpu", precision="fp32")
    result = stream_speed.measure(args)
    assert len(result["rounds"]) == 3 and all(set(r) == {"memory", "stream"} for r in result["rounds"])
    ratios = sorted(r["stream"] / r["memory"] for r in result["rounds"])
    assert result["ratio"] == pytest.approx(ratios[1])  # the median of the rounds' ratios


@pytest.mark.slow
def test_prepare_memory_runs_the_prepare_stage_on_the_jpegs_it_writes(tmp_path):
    prepare_memory.write_folder(tmp_path / "raw", 20, seed=0)
    files = sorted((tmp_path / "raw").rglob("*.JPEG"))
    assert len(files) == 30 and {path.parent.parent.name for path in files} == {"train", "val"}
    (tmp_path / "project").mkdir()
    run = prepare_memory.prepare_in_process(tmp_path / "project", tmp_path / "raw", image_size=16)
    pixels = np.load(tmp_path / "project" / "data" / "prepared" / "train_x.npy", mmap_mode="r")
    assert pixels.shape == (20, 3, 16, 16)
    assert run["prepared_bytes"] > 30 * 3 * 16 * 16 and run["peak_rss_mib"] > 0 and run["seconds"] > 0
