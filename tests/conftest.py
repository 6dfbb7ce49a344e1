import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from project import Reproduced, reproduce_chain  # noqa: E402

# The suite runs on every core (pytest-xdist, `--dist loadgroup`), one group of tests per worker at a time.
# A module is a group, so its module-scoped fixtures are built once. The modules that run studies on Ray
# form one group: two Ray instances side by side, each running jobs on every core, slow each other down
# more than they gain. The modules of the shared reproduced chain form one group, so it is trained once.
# Groups are handed out heaviest first (Ray, the shared chain, the other real pipelines, then the rest), so
# that no long group starts last.
RAY_MODULES = ("test_launch", "test_table_miniatures")
RAY_GROUP, CHAIN_GROUP = "ray", "reproduced-chain"
ORDER = (RAY_GROUP, CHAIN_GROUP)
MAX_WORKERS = 8  # beyond that, workers mostly wait for each other's processes and add memory


@pytest.fixture(scope="session")
def reproduced_chain(tmp_path_factory: pytest.TempPathFactory) -> Reproduced:
    """The test chain after its first ``dvc repro``, committed: modules that need a finished chain copy
    it (``Reproduced.copy``) instead of training their own."""
    return reproduce_chain(tmp_path_factory.mktemp("reproduced") / "project")


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: one worker per core this process may use, at most ``MAX_WORKERS``."""
    return max(1, min(len(os.sched_getaffinity(0)), MAX_WORKERS))


def group_of(item: pytest.Item) -> str:
    module = item.module.__name__ if item.module else item.nodeid
    if module in RAY_MODULES:
        return RAY_GROUP
    if "reproduced_chain" in getattr(item, "fixturenames", ()):
        return CHAIN_GROUP
    return module


def heaviness(item: pytest.Item, group: str) -> int:
    """Sort rank: Ray, the shared chain, other real pipelines (``slow``), then the rest."""
    if group in ORDER:
        return ORDER.index(group)
    return len(ORDER) + (0 if item.get_closest_marker("slow") else 1)


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's, which names each test after its group
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    groups = {item.nodeid: group_of(item) for item in items}
    for item in items:
        item.add_marker(pytest.mark.xdist_group(groups[item.nodeid]))
    ranks = {}  # a group ranks as its heaviest test, so that none of it is split from the rest
    for item in items:
        group = groups[item.nodeid]
        ranks[group] = min(ranks.get(group, len(ORDER) + 1), heaviness(item, group))
    items.sort(key=lambda item: ranks[groups[item.nodeid]])  # stable: a group keeps its tests' order
