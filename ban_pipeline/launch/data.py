"""Before a study starts: is the data each experiment reads where its jobs will look for it?

A job reads ``data.root`` in its own clone of the study's commit when the path is relative, so a
relative root only works for files git tracks; an absolute one must be on storage every node sees at
the same path (the check runs on the launcher's host). A missing dataset would otherwise fail every
job of it, one by one, after the shared stages before it had run.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from ban.core.config import Params
from ban.core.errors import ConfigError
from ban.datasets import dataset_of
from ban_pipeline.processes import git


def check_study_data(repository: Path, experiments: dict[str, Params]) -> None:
    """Refuse to start when some experiments' data is not where their jobs will read it."""
    problems = data_problems(repository, experiments)
    if not problems:
        return
    lines = [f"  {problem} (needed by {len(names)}: {', '.join(names[:3])}{', ...' * (len(names) > 3)})"
             for problem, names in problems.items()]
    raise ConfigError("data not found where the jobs read it (checked on this host; every node must see "
                      "data.root at the same path):\n" + "\n".join(lines) + "\ngive -S data.root=/absolute/"
                      "path, or -S data.download=true, or leave those experiments out (--rows for a table)")


def data_problems(repository: Path, experiments: dict[str, Params]) -> dict[str, list[str]]:
    """Each problem (one line) with the experiments it would stop; empty when all can read their data."""
    problems: dict[str, list[str]] = {}
    found: dict[str, str | None] = {}  # by data settings: a grid's experiments mostly share them
    for name, params in experiments.items():
        key = repr(params.data)
        if key not in found:
            found[key] = _problem(repository, params)
        problem = found[key]
        if problem:
            problems.setdefault(problem, []).append(name)
    return problems


def _problem(repository: Path, params: Params) -> str | None:
    data, dataset = params.data, dataset_of(params.data)
    root = Path(data.root)
    missing = dataset.missing(data, root if root.is_absolute() else repository / root)
    if missing:
        return f"{data.name}: {missing}"
    if root.is_absolute() or git(repository, "ls-files", str(root)):
        return None
    with tempfile.TemporaryDirectory() as clone:  # what a job's clone holds there: nothing git tracks
        if dataset.missing(data, Path(clone) / root) is None:
            return None
    return (f"{data.name}: data.root {data.root} is relative, so each job reads it inside its own clone of "
            "the commit, where git tracks nothing there; give an absolute path that every node reads")
