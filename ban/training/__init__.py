"""The training path: everything the ``teacher`` and ``student@genK`` stages run, and nothing else."""
