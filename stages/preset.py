"""``python -m stages.preset``: make presets/NAME.yaml the params; --list shows them all.

Not a pipeline stage: the command ``ban preset``, whose code is ``ban_pipeline.commands.preset``
(``--help`` describes it).
"""

from __future__ import annotations

from ban_pipeline.commands.preset import main
from stages.cli import run

if __name__ == "__main__":
    run(main)
