"""Studies on a Ray cluster: every combination of a grid of ``-S`` overrides as an ordinary DVC experiment.

``launcher`` turns a launch's options into experiments and runs them; ``settings`` finds the study's
commit, remotes and folders; ``plan`` expands the grid and finds the stages that several experiments
share (the same command, params and upstream work); ``jobs`` runs one unit of work in its own clone of
the repository (a shared stage with ``dvc repro``, an experiment with ``dvc exp run``) and exchanges
results through a DVC remote and a git remote; ``study`` submits the jobs to Ray in dependency order and
reports progress. Not imported by any pipeline stage.
"""

from ban.core.errors import require_extra

require_extra("cluster", ("ray",), "the study launcher (ban_pipeline.launch)")
