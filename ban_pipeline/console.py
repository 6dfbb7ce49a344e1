"""``ban``: the commands users run by hand, as one program (``ban launch``, ``ban tables``, ...).

Each subcommand runs the same ``main`` as its ``python -m stages.X`` form (``ban_pipeline.commands``);
DVC keeps calling the stage modules. A command's module is imported only when it runs, so that
``ban --help`` answers at once.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import sys
from dataclasses import dataclass

import ban
from ban_pipeline.runner import run


@dataclass(frozen=True)
class Command:
    module: str
    summary: str


COMMANDS = {
    "launch": Command("ban_pipeline.commands.launch", "run a study (a grid of -S overrides, or the paper's "
                      "tables) as DVC experiments on a Ray cluster"),
    "aggregate": Command("ban_pipeline.commands.aggregate", "a multi-seed study, or one of the paper's "
                         "tables, from finished DVC experiments"),
    "tables": Command("ban_pipeline.commands.table_overview", "the paper's tables: their rows, runs and "
                      "estimated cost"),
    "gate": Command("ban_pipeline.commands.gate", "fail when a headline metric got worse than at a git "
                    "revision"),
    "regimes": Command("ban_pipeline.commands.regimes", "the teacher's regimes side by side, from "
                       "committed studies"),
    "preset": Command("ban_pipeline.commands.preset", "make presets/NAME.yaml the params; --list shows them "
                      "with their cost"),
    "verify": Command("ban_pipeline.commands.verify", "re-aggregate committed studies and check every figure "
                      "quoted from them"),
}


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ban", description="Born-Again Networks: the commands run by "
                                     "hand (each also runs as python -m stages.COMMAND in the project's "
                                     "checkout).",
                                     epilog="`ban COMMAND --help` describes a command and its options.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {ban.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, command in COMMANDS.items():
        commands.add_parser(name, help=command.summary, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        parser().parse_args(argv)  # --help, --version, or a usage error (exit 2)
        return
    name, rest = argv[0], argv[1:]
    module = importlib.import_module(COMMANDS[name].module)
    if "prog" in inspect.signature(module.main).parameters:
        run(lambda arguments: module.main(arguments, prog=f"ban {name}"), rest)
    else:
        run(module.main, rest)


if __name__ == "__main__":
    main()
