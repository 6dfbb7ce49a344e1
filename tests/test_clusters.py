"""The cluster recipes (docs/clusters.md): what this machine can check without a cluster. The Slurm
script's syntax, the fields KubeRay and ``ray up`` require, and each recipe's launch line, which must run
as written with ``--dry-run`` in a project whose remotes the line names."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml
from project import ROOT, environment, make_project, run

DOCS = ROOT / "docs"
SCRIPT = DOCS / "clusters" / "slurm.sbatch"
LAUNCH = "python -m stages.launch"


def logical_lines(text: str) -> list[str]:
    """Shell lines with their backslash continuations joined."""
    return re.sub(r"\\\n\s*", "", text).splitlines()


def launch_command(line: str) -> str:
    """The launcher's command in ``line``, without the quote that opens before it (``ray exec "..."``)."""
    before, _, after = line.partition(LAUNCH)
    return LAUNCH + (after.rstrip()[:-1] if before.count('"') % 2 else after)


def launch_lines() -> dict[str, str]:
    """Each recipe's launch line: the batch script's, and the one in each other section of the page."""
    script = logical_lines(SCRIPT.read_text())
    lines = {"slurm": next(launch_command(line) for line in script if LAUNCH in line)}
    sections = re.split(r"^## ", (DOCS / "clusters.md").read_text(), flags=re.MULTILINE)[1:]
    for section in sections:
        title = section.splitlines()[0].strip("`").split()[0].lower()
        found = [launch_command(line) for line in logical_lines(section) if LAUNCH in line]
        if title != "slurm":
            assert len(found) == 1, (title, found)
            lines[title] = found[0]
        else:
            assert found == [lines["slurm"]], "the page shows the script's launch line as the script has it"
    return lines


def test_the_slurm_script_is_valid_bash_that_starts_ray_on_every_node() -> None:
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)
    text = SCRIPT.read_text()
    for needed in ("#SBATCH --nodes=", "ray start --head", 'ray start --address="$RAY_ADDRESS"'):
        assert needed in text


def test_the_kuberay_manifest_has_what_the_operator_requires() -> None:
    cluster = yaml.safe_load((DOCS / "clusters" / "raycluster.yaml").read_text())
    assert (cluster["apiVersion"], cluster["kind"]) == ("ray.io/v1", "RayCluster")
    assert cluster["metadata"]["name"] and cluster["spec"]["rayVersion"]
    head = cluster["spec"]["headGroupSpec"]
    assert "rayStartParams" in head and head["template"]["spec"]["containers"][0]["image"]
    for group in cluster["spec"]["workerGroupSpecs"]:
        assert group["groupName"] and "rayStartParams" in group
        assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]
        assert group["template"]["spec"]["containers"][0]["image"]


def test_the_ray_up_file_has_what_the_cluster_launcher_requires() -> None:
    config = yaml.safe_load((DOCS / "clusters" / "ray-up.yaml").read_text())
    assert config["cluster_name"] and config["provider"]["type"] and config["auth"]["ssh_user"]
    types = config["available_node_types"]
    assert config["head_node_type"] in types and all("node_config" in node for node in types.values())
    for commands in ("setup_commands", "head_start_ray_commands", "worker_start_ray_commands"):
        assert config[commands]


def test_every_recipe_has_one_launch_line() -> None:
    assert set(launch_lines()) == {"slurm", "kuberay", "ray"}


@pytest.mark.slow
def test_every_launch_line_dry_runs(tmp_path: Path) -> None:
    """As written, in a project whose ``origin`` is a bare repository, the remotes the Slurm and KubeRay
    lines read from the environment set to it and a DVC remote folder, the Slurm script's arguments
    ``-S seed=0,1``."""
    project = make_project(tmp_path / "project")
    run(tmp_path, "git", "init", "-q", "--bare", "remote.git")
    run(project, "git", "remote", "add", "origin", str(tmp_path / "remote.git"))
    run(project, "git", "push", "-q", "origin", "main")
    env = dict(environment(), GIT_REMOTE=str(tmp_path / "remote.git"), RAY_ADDRESS="127.0.0.1:6379",
               DVC_REMOTE=str(tmp_path / "dvc-remote"), STATE_DIR=str(tmp_path / "state"))
    started = {name: subprocess.Popen(["bash", "-c", f"{line} --dry-run", "launch", "-S", "seed=0,1"],
                                      cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True)
               for name, line in launch_lines().items()}
    for name, process in started.items():
        out, err = process.communicate(timeout=600)
        assert process.returncode == 0, (name, out, err)
        assert re.search(r"^study study-\S+: \d+ experiments of commit", out, re.MULTILINE), (name, out)
        assert "estimated cost:" in out, (name, out)
