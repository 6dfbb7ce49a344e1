"""``python -m stages.tables``: the paper's tables this project reproduces, their rows and their cost.

Not a pipeline stage: the command ``ban tables``, whose code is ``ban_pipeline.commands.table_overview``
(``--help`` describes it).
"""

from __future__ import annotations

from ban_pipeline.commands.table_overview import main
from stages.cli import run

if __name__ == "__main__":
    run(main)
