"""A revision's metrics computed on this machine, so that the gate compares like with like.

The ``metrics/summary.json`` committed at a revision may come from another machine, whose CPU resolves
``precision: auto`` differently or runs other kernels: the same commit then gives other errors. Here the
revision is reproduced in a temporary git worktree that shares this repository's DVC cache. Its
``dvc.lock`` is set aside first: DVC consults its run-cache only for stages that differ from their lock
entry, and the lock's outputs were made elsewhere. So every stage the current run already made with the
same code, params and data comes from the run-cache, and only what differs is trained, here.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
from pathlib import Path

from ban.core.errors import BanError
from ban_pipeline.engines import dvc_private
from ban_pipeline.processes import dvc_command, git, shown


def reproduced_metrics(revision: str, path: Path) -> str:
    """The text of ``path`` after ``dvc repro`` of ``revision`` here; DVC's output goes to stderr."""
    root = Path(git(None, "rev-parse", "--show-toplevel"))
    cache = dvc_private.storage(root).cache_dir
    with tempfile.TemporaryDirectory(prefix="ban-baseline-") as parent:
        tree = Path(parent) / "revision"
        git(root, "worktree", "add", "--detach", str(tree), revision)
        try:
            dvc_private.configure_clone(tree, cache, None)
            (tree / "dvc.lock").unlink(missing_ok=True)
            print(f"reproducing {revision} here (stages the current run shares come from DVC's run-cache)",
                  file=sys.stderr, flush=True)
            shown(dvc_command("repro"), tree, name=f"dvc repro of {revision}")
            if not (tree / path).exists():
                raise BanError(f"{revision} does not write {path}")
            return (tree / path).read_text()
        finally:
            with contextlib.suppress(BanError):  # the temporary directory goes anyway
                git(root, "worktree", "remove", "--force", str(tree))
