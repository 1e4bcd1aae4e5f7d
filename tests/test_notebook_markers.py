"""nbval reads a marker comment only when the comment is the marker and nothing else.

`# NBVAL_IGNORE_OUTPUT  (why)` is silently NOT a marker: nbval then compares the cell's output,
and a cell meant to be ignored fails on another machine (this happened in CI to chapters 8
and 9). Every comment that names an nbval marker must be exactly one.
"""
from pathlib import Path

import nbformat
import pytest
from nbval.plugin import comment_markers

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks_to_check():
    assert len(NOTEBOOKS) >= 14


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_nbval_marker_comment_is_exactly_a_marker(path):
    bad = []
    for index, cell in enumerate(nbformat.read(path, as_version=4).cells):
        if cell.cell_type != "code":
            continue
        for line in cell.source.splitlines():
            stripped = line.strip()
            if stripped.startswith("#") and "NBVAL" in stripped.upper():
                comment = stripped.lstrip("#").strip()
                if comment not in comment_markers:
                    bad.append(f"cell {index}: {stripped[:80]!r}")
    assert not bad, (f"{path.name}: comments that look like nbval markers but are not read as one "
                     f"(put the marker alone on its line, the reason on the next): {bad}")
