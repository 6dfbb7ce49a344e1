"""``python -m stages.regimes``: the teacher's regimes side by side, from committed studies.

Not a pipeline stage: the command ``ban regimes``, whose code is ``ban_pipeline.commands.regimes``
(``--help`` describes it).
"""

from __future__ import annotations

from ban_pipeline.commands.regimes import main
from stages.cli import run

if __name__ == "__main__":
    run(main)
