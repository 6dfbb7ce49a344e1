import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from project import Reproduced, reproduce_chain  # noqa: E402


@pytest.fixture(scope="session")
def reproduced_chain(tmp_path_factory: pytest.TempPathFactory) -> Reproduced:
    """The test chain after its first ``dvc repro``, committed: modules that need a finished chain copy
    it (``Reproduced.copy``) instead of training their own."""
    return reproduce_chain(tmp_path_factory.mktemp("reproduced") / "project")
