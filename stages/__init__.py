"""One thin module per DVC stage: read params, call the ``ban`` library, write declared outputs."""

import gc
import sys

# ``python -m stages.X`` runs this first, while it locates X (``sys.argv[0]`` is then "-m"). X's start-up
# imports (torch and its stack: hundreds of thousands of objects that live as long as the process) then
# run with the garbage collector off: collecting while they are created walks them again and again.
# ``stages.cli`` freezes them and turns the collector back on before the command's ``main`` runs.
if sys.argv[:1] == ["-m"]:
    gc.disable()
