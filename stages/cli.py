"""What every stage does around its work: logging, and one-line errors instead of tracebacks."""

from __future__ import annotations

import gc
import logging
import os
import sys
from collections.abc import Callable

from ban.core.errors import BanError


def run(main: Callable[[list[str]], None], argv: list[str] | None = None) -> None:
    """Run a stage's ``main``; a user-facing problem ends with one line on stderr and its exit code."""
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout, force=True)
    try:
        main(sys.argv[1:] if argv is None else argv)
    except BanError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(error.exit_code)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly, as command-line tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
        sys.exit(141)


def run_process(main: Callable[[list[str]], None]) -> None:
    """``run`` as the whole of a stage process (its ``__main__``), with every object that exists when it
    starts and when it ends frozen out of the garbage collector (``gc.freeze``).

    torch and its compiler stack are hundreds of thousands of long-lived objects, which every full
    collection walks again, and the interpreter runs full collections as it exits: about a second of
    a train stage's five. Only for a process that ends with the stage: frozen cycles are never freed.
    """
    gc.freeze()
    try:
        run(main)
    finally:
        gc.freeze()
