"""``python -m stages.gate``: fail when a headline metric got worse than at a git revision.

Not a pipeline stage: the command ``ban gate``, whose code is ``ban_pipeline.commands.gate``
(``--help`` describes it).
"""

from __future__ import annotations

from ban_pipeline.commands.gate import main
from stages.cli import run

if __name__ == "__main__":
    run(main)
