"""Token streams cut into rows and unrolled windows, as truncated backpropagation through time reads them."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from ban.core.errors import DataError


def batchify(stream: torch.Tensor, batch_size: int) -> torch.Tensor:
    """[batch_size, T]: row b is the b-th contiguous chunk; the remainder is dropped."""
    steps = len(stream) // batch_size
    if steps < 2:
        raise DataError(f"a stream of {len(stream)} tokens is too short for batch size {batch_size}")
    return stream[: batch_size * steps].view(batch_size, steps)


def bptt_windows(n_steps: int, bptt: int) -> list[tuple[int, int]]:
    """(start, length) of each unrolled window over a batchified stream of ``n_steps`` columns.

    Inputs are columns ``start:start+length`` and targets the same shifted by one, so
    over one epoch every column but the last is an input once and every column but
    the first a target once; the last window may be shorter than ``bptt``.
    """
    if bptt < 1:
        raise ValueError(f"bptt must be positive, got {bptt}")
    return [(start, min(bptt, n_steps - 1 - start)) for start in range(0, n_steps - 1, bptt)]


def bptt_batches(batched: torch.Tensor, bptt: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(inputs, targets), each [batch, length], for every window of ``bptt_windows``."""
    for start, length in bptt_windows(batched.shape[1], bptt):
        yield batched[:, start : start + length], batched[:, start + 1 : start + 1 + length]
