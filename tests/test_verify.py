"""``stages.verify``: every committed study re-aggregates from its saved experiments to the committed
files and to the README's generated tables; one changed digit fails it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ban.core.errors import BanError
from ban_pipeline.commands import verify
from ban_pipeline.reporting.markdown_blocks import blocks_in
from ban_pipeline.reporting.verify import verify_blocks, write_blocks

CROPS = Path("reports/studies/cifar10-32-crops")


def test_every_committed_study_and_every_generated_block_matches_its_record(
        capsys: pytest.CaptureFixture) -> None:
    assert verify.main([]) == 0
    assert "every figure matches its record (5 checked)" in capsys.readouterr().out


def test_a_copy_with_one_digit_changed_fails_and_shows_the_line(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture) -> None:
    copy = tmp_path / CROPS.name
    shutil.copytree(CROPS, copy)
    text = (copy / "study.md").read_text()
    assert text.count("| gen0    | 26.72 ± 0.27 (5) |") == 1
    (copy / "study.md").write_text(text.replace("| gen0    | 26.72 ± 0.27 (5) |",
                                                "| gen0    | 26.73 ± 0.27 (5) |"))
    with pytest.raises(verify.FiguresDiffer, match="^1 files or blocks differ from what their records give"):
        verify.main([str(copy)])
    out = capsys.readouterr().out
    assert f"{copy}/study.md: differs from what the record gives" in out
    assert "  -| gen0    | 26.73 ± 0.27 (5) |" in out and "  +| gen0    | 26.72 ± 0.27 (5) |" in out


def test_a_changed_result_in_the_saved_experiments_fails_too(tmp_path: Path) -> None:
    copy = tmp_path / CROPS.name
    shutil.copytree(CROPS, copy)
    record = (copy / "experiments.json").read_text()
    assert record.count('"test_error": 26.75,') == 2  # seed 1's teacher: its metrics file, the summary
    (copy / "experiments.json").write_text(record.replace('"test_error": 26.75,', '"test_error": 26.85,'))
    with pytest.raises(verify.FiguresDiffer) as failed:
        verify.main([str(copy)])
    assert failed.value.exit_code == 1


def test_a_generated_block_that_differs_is_found_by_name_in_any_page_and_rewritten(
        tmp_path: Path) -> None:
    """The block sits in another page: it is found by its name wherever it is."""
    body = blocks_in(Path("docs/results.md").read_text())["cifar10-32-crops-recipe-table"]
    page = tmp_path / "docs" / "studies" / "crops.md"
    page.parent.mkdir(parents=True)
    changed = body.replace("0.58", "0.76")
    assert changed != body
    page.write_text(f"# Crops\n\n<!-- BEGIN generated cifar10-32-crops-recipe-table -->\n{changed}"
                    "<!-- END generated cifar10-32-crops-recipe-table -->\n\nafter\n")
    found = verify_blocks(tmp_path, [CROPS])
    assert found[0] == f"{page}: block cifar10-32-crops-recipe-table: differs from what the record gives"
    assert write_blocks(tmp_path) == [f"{page}: block cifar10-32-crops-recipe-table"]
    assert blocks_in(page.read_text())["cifar10-32-crops-recipe-table"] == body
    assert page.read_text().endswith("<!-- END generated cifar10-32-crops-recipe-table -->\n\nafter\n")
    assert verify_blocks(tmp_path, [CROPS]) == []


def test_a_block_of_no_known_name_is_reported(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("<!-- BEGIN generated crops-tabel -->\nx\n"
                                        "<!-- END generated crops-tabel -->\n")
    assert verify_blocks(tmp_path, [CROPS])[0].startswith(
        f"{tmp_path}/README.md: block crops-tabel: no generated figure has this name; known: ")


@pytest.mark.slow  # the command as a process (seconds of imports)
def test_the_command_exits_1_on_a_difference_with_one_line(tmp_path: Path) -> None:
    """(``--help`` and an unknown option, as for every command: test_commands.py.)"""
    copy = tmp_path / CROPS.name
    shutil.copytree(CROPS, copy)
    (copy / "summary.csv").write_text((copy / "summary.csv").read_text().replace("26.7", "26.8", 1))
    changed = subprocess.run([sys.executable, "-m", "stages.verify", str(copy)], capture_output=True,
                             text=True)
    assert changed.returncode == 1
    assert changed.stderr.splitlines()[-1] == ("error: 1 files or blocks differ from what their records give "
                                               "(above)")
    assert f"{copy}/summary.csv: differs from what the record gives" in changed.stdout


def test_a_missing_folder_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(BanError, match=f"^{tmp_path / 'missing'}: no such folder$") as raised:
        verify.main([str(tmp_path / "missing")])
    assert raised.value.exit_code == 1
