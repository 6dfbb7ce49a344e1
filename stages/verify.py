"""``python -m stages.verify``: check committed studies against their saved experiments.

Not a pipeline stage: the command ``ban verify``, whose code is ``ban_pipeline.commands.verify``
(``--help`` describes it).
"""

from __future__ import annotations

from ban_pipeline.commands.verify import main
from stages.cli import run

if __name__ == "__main__":
    run(main)
