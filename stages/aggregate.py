"""``python -m stages.aggregate``: a multi-seed study, or one of the paper's tables, from finished DVC
experiments.

Not a pipeline stage: the command ``ban aggregate``, whose code is ``ban_pipeline.commands.aggregate``
(``--help`` describes it).
"""

from __future__ import annotations

from ban_pipeline.commands.aggregate import main
from stages.cli import run

if __name__ == "__main__":
    run(main)
