"""``python -m stages.launch``: a study of DVC experiments on a Ray cluster.

Not a pipeline stage: the command ``ban launch``, whose code is ``ban_pipeline.commands.launch``
(``--help`` describes it).
"""

from __future__ import annotations

from ban_pipeline.commands.launch import main
from stages.cli import run

if __name__ == "__main__":
    run(main)
