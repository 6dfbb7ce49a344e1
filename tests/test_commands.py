"""Every command behaves like a command: ``--help`` describes it and touches nothing, an unknown option
is a usage error (exit 2), and ``ban`` lists its subcommands, each the same code as ``python -m stages.X``.

The modules import torch, so one interpreter runs every ``python -m MODULE --help`` the way ``-m`` does
(``runpy``, as ``__main__``), while a second process runs one of them from the shell, side by side.
"""

from __future__ import annotations

import ast
import hashlib
import importlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from project import ROOT, environment, make_project

from ban_pipeline import console

# Runs each module as ``python -m MODULE ARGUMENTS`` does, in this interpreter; prints what each did.
EACH_AS_MAIN = """
import contextlib, io, json, runpy, sys
results = []
for module in sys.argv[1:]:
    for arguments in (["--help"], ["--no-such-flag"]):
        out, err = io.StringIO(), io.StringIO()
        sys.argv = [module, *arguments]
        code = 0
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                runpy.run_module(module, run_name="__main__", alter_sys=True)
            except SystemExit as exit:
                code = exit.code or 0
        results.append([module, arguments[0], code, out.getvalue(), err.getvalue()])
print(json.dumps(results))
"""


def commands() -> list[str]:
    """Every module under stages/ and bench/ that runs as a program (has ``if __name__ == "__main__"``)."""
    found = []
    for path in sorted([*(ROOT / "stages").glob("*.py"), *(ROOT / "bench").glob("*.py")]):
        tree = ast.parse(path.read_text())
        if any(isinstance(node, ast.If) and "__main__" in ast.unparse(node.test) for node in tree.body):
            found.append(f"{path.parent.name}.{path.stem}")
    return found


def tree_digest(root: Path) -> dict[str, str]:
    return {str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(root.rglob("*")) if path.is_file()}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_project(tmp_path_factory.mktemp("commands") / "project",
                        extra=("bench", "presets", "paper", "reports"))


@pytest.mark.slow
def test_every_command_takes_help_touches_nothing_and_refuses_an_unknown_option(project: Path) -> None:
    modules = commands()
    assert {"stages.prepare", "stages.train", "stages.launch", "bench.train_speed"} <= set(modules)
    env = dict(environment(), PYTHONDONTWRITEBYTECODE="1")
    before = tree_digest(project)
    shell = subprocess.Popen([sys.executable, "-m", "stages.prepare", "--help"], cwd=project, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    each = subprocess.run([sys.executable, "-c", EACH_AS_MAIN, *modules], cwd=project, env=env,
                          capture_output=True, text=True, timeout=600)
    printed, errors = shell.communicate(timeout=600)
    assert each.returncode == 0, each.stderr
    assert (shell.returncode, printed.split()[:3]) == (0, ["usage:", "python", "-m"]), errors
    assert "params.yaml keys it reads: data." in printed
    results = json.loads(each.stdout)
    for module, argument, code, out, err in results:
        if argument == "--help":
            assert (code, out.split()[:1]) == (0, ["usage:"]), (module, out, err)
            assert len(out.splitlines()) > 3, (module, out)  # what it does, not the usage line alone
        else:
            refused = err.startswith("usage: ") and f"{module}: error: " in err  # e.g. unrecognized arguments
            assert (code, refused) == (2, True), (module, code, err)
    assert tree_digest(project) == before
    assert not (project / "data" / "prepared").exists()


def test_each_pipeline_stage_names_the_params_keys_dvc_yaml_gives_it() -> None:
    """What ``--help`` says a stage reads covers the params sections dvc.yaml makes it depend on."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        stage = stage.get("do", stage)
        said = importlib.import_module(stage["cmd"].split()[2]).PARAMS_READ
        for key in stage.get("params", []):
            assert key.replace("${key}", "<generation>") in said, (name, key, said)


def test_ban_lists_its_subcommands() -> None:
    result = subprocess.run([sys.executable, "-m", "ban_pipeline.console", "--help"], cwd=ROOT,
                            env=environment(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    for name in ("launch", "aggregate", "tables", "gate", "regimes", "preset", "verify"):
        assert f"\n    {name}" in result.stdout, name
    empty = subprocess.run([sys.executable, "-m", "ban_pipeline.console"], cwd=ROOT, env=environment(),
                           capture_output=True, text=True, timeout=120)
    assert empty.returncode == 2 and "required: COMMAND" in empty.stderr


@pytest.mark.parametrize("name", console.COMMANDS)
def test_each_subcommand_is_its_stage_and_has_its_own_help(name: str, capsys: pytest.CaptureFixture) -> None:
    stage = (ROOT / "stages" / f"{name}.py").read_text()
    assert f"from {console.COMMANDS[name].module} import main" in stage  # the same code as python -m stages.X
    with pytest.raises(SystemExit) as exit:
        console.main([name, "--help"])
    assert exit.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: ban {name} ")
    with pytest.raises(SystemExit) as exit:
        console.main([name, "--no-such-flag"])
    assert exit.value.code == 2 and "unrecognized arguments: --no-such-flag" in capsys.readouterr().err


@pytest.mark.slow
def test_pip_install_gives_the_ban_program(tmp_path: Path) -> None:
    """``pip install .`` (into a virtual environment that sees this machine's packages, so that nothing is
    downloaded) installs ``ban``, which answers outside the repository, its commands included."""
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, source / name)
    for package in ("ban", "ban_pipeline"):
        shutil.copytree(ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
                   check=True)
    pip = [venv / "bin" / "python", "-m", "pip", "install", "--no-index", "--no-build-isolation", "--no-deps"]
    install = subprocess.run([*pip, "-q", str(source)], capture_output=True, text=True, cwd=tmp_path)
    assert install.returncode == 0, install.stdout + install.stderr
    for arguments, expected in ((["--help"], "usage: ban "), (["tables", "--help"], "usage: ban tables "),
                                (["--version"], "ban ")):
        result = subprocess.run([venv / "bin" / "ban", *arguments], capture_output=True, text=True,
                                cwd=tmp_path)
        assert result.returncode == 0 and result.stdout.startswith(expected), (arguments, result.stderr)


def test_a_stage_only_parses_calls_the_application_and_prints() -> None:
    """At most 90 lines each, importing the library, the application and the shared runner: no other stage."""
    for path in (ROOT / "stages").glob("*.py"):
        assert len(path.read_text().splitlines()) <= 90, path.name
        imported = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                imported.add(node.module or "")
            elif isinstance(node, ast.Import):
                imported |= {alias.name for alias in node.names}
        ours = {name for name in imported if name.split(".")[0] in ("ban", "ban_pipeline", "stages")}
        others = imported - ours - {"__future__", "argparse", "gc", "sys", "collections.abc"}
        assert others == set() and {name for name in ours if name.startswith("stages")} <= {"stages.cli"}, \
            (path.name, others, ours)
