"""What every stage does around its work: logging, and one-line errors instead of tracebacks."""

from __future__ import annotations

import logging
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
