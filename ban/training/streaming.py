"""Training from prepared files larger than memory (``data.storage``): batches gathered on the host.

In stream mode the prepared images stay in their memory-mapped files. A background thread gathers
the rows of the next batches (``PREFETCH`` of them ahead) into pinned host memory when the device is
a GPU, and the training thread moves one batch at a time to the device (``non_blocking``: the copy
overlaps the step before it). Which rows, in which order, is decided by the caller exactly as in
memory, and every random draw stays on the training thread, so both storages train the same
network bit for bit.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterable, Iterator

import torch

from ban.training.device import describe_device

PREFETCH = 4  # batches gathered ahead of the one training
MEMORY_SHARE = 0.5  # auto: memory when the prepared images take at most this share of the device's memory


def device_memory(device: torch.device) -> int:
    """Bytes of memory that in-memory data would occupy: the GPU's total, else the host's physical RAM."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[1]
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def resolve_storage(setting: str, images_bytes: int, device: torch.device) -> str:
    """``memory`` or ``stream`` for ``data.storage``: auto streams beyond ``MEMORY_SHARE`` of the device."""
    if setting != "auto":
        return setting
    budget = MEMORY_SHARE * device_memory(device)
    return "memory" if images_bytes <= budget else "stream"


def describe_storage(storage: str, images_bytes: int, device: torch.device) -> str:
    where = describe_device(device) if storage == "memory" else "the prepared files, a batch at a time"
    return f"data.storage {storage}: {images_bytes / 2**30:.2f} GiB of images read from {where}"


def streamed(source: torch.Tensor, rows: Iterable[torch.Tensor | slice],
             device: torch.device) -> Iterator[torch.Tensor]:
    """``source[selection]`` on ``device`` for each host index tensor or slice of ``rows``, gathered ahead
    in a thread (a slice is read in order, the way evaluation reads a split).

    The thread stops when the iteration ends or is abandoned (the generator closed), and an error in
    it is raised here, on the training thread.
    """
    pinned = device.type == "cuda"
    ready: queue.Queue[torch.Tensor | BaseException | None] = queue.Queue(maxsize=PREFETCH)
    stop = threading.Event()

    def offer(item: torch.Tensor | BaseException | None) -> None:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def gather() -> None:
        try:
            for selection in rows:
                if stop.is_set():
                    return
                if isinstance(selection, slice):
                    part = source[selection]
                    offer(part.pin_memory() if pinned else part.clone())
                    continue
                batch = torch.empty((len(selection), *source.shape[1:]), dtype=source.dtype,
                                    pin_memory=pinned)
                offer(torch.index_select(source, 0, selection, out=batch))
            offer(None)
        except BaseException as error:  # noqa: BLE001 - handed to the training thread, which raises it
            offer(error)

    worker = threading.Thread(target=gather, name="batch-gatherer", daemon=True)
    worker.start()
    try:
        while (item := ready.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item.to(device, non_blocking=pinned)
    finally:
        stop.set()
        worker.join()
