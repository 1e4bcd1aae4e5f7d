"""Write a small notebook with one Explorer widget, working or deliberately broken.

It lets you check the browser test itself without a chapter notebook, and see it fail:

    python tests/browser/fixture_notebook.py /tmp/wnb/notebooks/widget_ok.ipynb
    python tests/browser/fixture_notebook.py /tmp/wnb/notebooks/widget_busy.ipynb --busy
    python tests/browser/fixture_notebook.py /tmp/wnb/notebooks/widget_frozen.ipynb --broken frozen-image
    pytest tests/browser -n 0 --widget-notebooks /tmp/wnb/notebooks

Never write these into the course's ``notebooks/`` folder: nbval and the browser test would
pick them up as chapters.

Ways to break it (``--broken``):

- ``observer-raises``: the drawing function raises once the control changes, so the
  kernel's observer fails and the image never updates;
- ``frozen-image``: the explorer ignores control changes (its image never updates);
- ``render-error``: the image's front-end view does not exist ("Error displaying widget");
- ``cell-error``: a cell after the widget raises an exception.

``--busy`` (a working notebook, the hard case for the test): the cells after the widget
set its slider from the kernel again and again, as chapter 6 does, and leave it at its
maximum. On a loaded machine those updates reach the page after the kernel is idle; the
test must wait for them to settle and then move the slider *left*.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import nbformat

BROKEN = ("observer-raises", "frozen-image", "render-error", "cell-error")

_SETUP = '''\
import numpy as np
import ipywidgets as widgets

from helpers.widgets import Explorer


class SineExplorer(Explorer):
    """y = sin(2 pi f x) on [0, 1], f chosen by a slider."""

    def __init__(self):
        super().__init__({"frequency": widgets.IntSlider(value=2, min=1, max=6, description="f (Hz)")})

    def draw(self, fig, frequency):
RAISE_LINE        x = np.linspace(0.0, 1.0, 400)
        ax = fig.add_subplot()
        ax.plot(x, np.sin(2 * np.pi * frequency * x))
        ax.set_title(f"sin(2π·{frequency}·x)")
        ax.set_xlabel("x (s)")
        ax.set_ylabel("y")
'''


def widget_notebook(broken: str | None = None, busy: bool = False) -> nbformat.NotebookNode:
    """The fixture notebook, working (``broken=None``) or broken in one of ``BROKEN`` ways;
    ``busy``: later cells move the slider from the kernel and leave it at its maximum."""
    if broken is not None and broken not in BROKEN:
        raise ValueError(f"broken must be None or one of {BROKEN}, got {broken!r}")
    raise_line = ""
    if broken == "observer-raises":
        raise_line = (
            '        if frequency != 2:\n'
            '            raise RuntimeError(f"deliberately broken draw at frequency={frequency}")\n'
        )
    cells = [
        nbformat.v4.new_markdown_cell(f"# Browser-test fixture ({broken or 'working'})"),
        nbformat.v4.new_code_cell(_SETUP.replace("RAISE_LINE", raise_line)),
    ]
    widget_cell = "# NBVAL_IGNORE_OUTPUT\nexplorer = SineExplorer()\n"
    if broken == "frozen-image":
        widget_cell += 'explorer.controls["frequency"].unobserve(explorer._changed, names="value")  # never redraws\n'
    if broken == "render-error":
        widget_cell += 'explorer.image._view_name = "NoSuchImageView"  # no such front-end view\n'
    widget_cell += "explorer"
    cells.append(nbformat.v4.new_code_cell(widget_cell))
    if busy:
        cells.append(nbformat.v4.new_code_cell(
            "slider = explorer.controls[\"frequency\"]\n"
            "for _ in range(3):                      # many updates, sent after the widget is shown\n"
            "    for value in range(slider.min, slider.max + 1):\n"
            "        slider.value = value\n"
            "assert slider.value == slider.max       # the test must move it left"))
    cells.append(nbformat.v4.new_code_cell("assert explorer.draws >= 1\nexplorer.figure"))
    if broken == "cell-error":
        cells.append(nbformat.v4.new_code_cell("1 / 0"))
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    return nb


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path, help="where to write the .ipynb")
    parser.add_argument("--broken", choices=BROKEN, default=None)
    parser.add_argument("--busy", action="store_true",
                        help="later cells move the slider from the kernel, leaving it at its maximum")
    args = parser.parse_args(argv)
    args.path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(widget_notebook(args.broken, args.busy), args.path)
    print(args.path)


if __name__ == "__main__":
    main()
