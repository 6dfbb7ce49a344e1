"""What every stage does around its work: its arguments (``--help`` without running it), logging, and
one-line errors instead of tracebacks (``ban_pipeline.runner``, shared with the ``ban`` command)."""

from __future__ import annotations

import argparse
import gc
from collections.abc import Callable

from ban_pipeline import runner

__all__ = ["run", "run_process", "stage_arguments"]

FULL_COLLECTION_EVERY = 1000  # collections of the middle generation; Python's default is 10


def stage_arguments(module: str, doc: str | None, reads: str) -> argparse.ArgumentParser:
    """The parser of a pipeline stage: its description, and the ``params.yaml`` keys it reads."""
    return argparse.ArgumentParser(prog=f"python -m {module}", description=doc,
                                   formatter_class=argparse.RawDescriptionHelpFormatter,
                                   epilog=f"params.yaml keys it reads: {reads}. DVC runs it (dvc repro, "
                                   "dvc exp run) as dvc.yaml says; its outputs are dvc.yaml's outs.")


def run(main: Callable[[list[str]], None], argv: list[str] | None = None) -> None:
    """``ban_pipeline.runner.run``, with the garbage collector on again (``stages`` holds it off while
    ``python -m stages.X`` imports)."""
    gc.enable()
    runner.run(main, argv)


def run_process(main: Callable[[list[str]], None]) -> None:
    """``run`` as the whole of a stage process (its ``__main__``), with every object that exists when it
    starts and when it ends frozen out of the garbage collector (``gc.freeze``).

    torch and its compiler stack are hundreds of thousands of long-lived objects, which every full
    collection walks again, and the interpreter runs full collections as it exits: about a second of
    a train stage's five. Only for a process that ends with the stage: frozen cycles are never freed.
    Full collections are then a hundred times rarer (young ones as often as ever): the objects a stage
    creates later and keeps are modules imported as it works (DVCLive, the compiler stack torch.optim
    imports at its first step), which each full collection would walk again.
    """
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_EVERY)
    try:
        run(main)
    finally:
        gc.freeze()
