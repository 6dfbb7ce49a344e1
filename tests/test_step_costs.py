"""What a training step costs besides the network: the logged analysis and the memory allocator."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import textwrap

import pytest
import torch
from project import ROOT
from torch import nn

import ban.training.engine as engine
from ban.core.config import DataConfig, KDConfig, TrainConfig
from ban.datasets import prepare_dataset
from ban.training.analysis import gradient_decomposition
from ban.training.domain import Batch
from ban.training.domains.image import ImageDomain, ImageRunner

CPU = torch.device("cpu")


@pytest.mark.parametrize(
    ("examples", "classes", "analysed"), [(700, 10_000, 26), (128, 10, 128), (128, 100, 128)]
)
def test_the_gradient_decomposition_reads_a_bounded_sample(monkeypatch, examples, classes, analysed):
    """A language-model step (700 tokens x 10,000 words) analyses 26 tokens; an image batch is read whole."""
    seen: list[tuple[int, ...]] = []

    def recorded(z: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        seen.append(tuple(z.shape))
        return gradient_decomposition(z, t, y)

    monkeypatch.setattr(engine, "gradient_decomposition", recorded)
    torch.manual_seed(0)
    student, teacher = nn.Linear(8, classes), nn.Linear(8, classes)
    trainer = engine.Trainer(
        student,
        ImageDomain(prepare_dataset(DataConfig(train_subset=100)), TrainConfig(), CPU, "fp32"),
        TrainConfig(),
        KDConfig(mode="ban", label_weight=1.0),
        seed=0,
        device=CPU,
        precision="fp32",
        generation="gen1",
        teacher=teacher,
    )
    batch = Batch(torch.randn(examples, 8), torch.randint(classes, (examples,)), global_size=examples)
    figures = trainer.step(batch, ImageRunner(student), ImageRunner(teacher))
    assert seen == [(analysed, classes)]
    assert 0 < float(figures["analysis/teacher_max_prob"]) / examples <= 1  # the step returns batch sums


MAPPED = textwrap.dedent("""
    import ctypes, sys, torch
    from ban.training.allocator import keep_freed_memory

    class Info(ctypes.Structure):  # glibc's struct mallinfo2
        _fields_ = [(name, ctypes.c_size_t) for name in
                    "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]

    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = Info
    kept = keep_freed_memory() if sys.argv[1] == "keep" else None
    tensors = [torch.ones(700, 10_000) for _ in range(4)]  # a language-model step's 28 MB tensors
    print(kept, libc.mallinfo2().hblkhd // 2**20)
""")


def mapped_mb(setting: str) -> tuple[str, int]:
    """In a fresh process: what ``keep_freed_memory`` returned, and the MB of the step's tensors held
    in blocks mapped one by one (each freed block of those goes back to the system, to be zero-filled
    again on the next step)."""
    result = subprocess.run([sys.executable, "-c", MAPPED, setting], cwd=ROOT, capture_output=True, text=True,
                            check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    kept, mapped = result.stdout.split()
    return kept, int(mapped)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc settings")
def test_step_sized_tensors_come_from_the_reused_heap_not_fresh_mappings():
    assert mapped_mb("default") == ("None", pytest.approx(107, abs=5))
    kept, mapped = mapped_mb("keep")
    assert kept == "True" and mapped < 10
