"""How every command ends: logging on stdout, and a user-facing problem as one line and an exit code.

The same for ``python -m stages.X`` and ``ban X``, so that both forms of a command behave alike.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable

from ban.core.errors import BanError


def run(main: Callable[[list[str]], None], argv: list[str] | None = None) -> None:
    """Run a command's ``main``; a user-facing problem ends with one line on stderr and its exit code."""
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
