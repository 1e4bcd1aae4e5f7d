"""The one widget pattern every chapter uses: controls -> pure drawing function -> PNG image."""
from __future__ import annotations

import io
import threading

import ipywidgets as widgets
from matplotlib.figure import Figure


class Explorer:
    """Base class: subclasses set ``title`` and implement ``draw(fig, **values)``.

    ``controls`` maps names to ipywidgets controls; ``draw`` receives their current
    values as keyword arguments and draws on a cleared Figure. The figure is a plain
    ``matplotlib.figure.Figure`` (not pyplot), so it never shows up as a stray output,
    and it is shown inside the widget as a PNG through ``ipywidgets.Image``.

    In a notebook: ``explorer`` as the last line of a cell shows the controls and the
    figure; ``explorer.figure`` in the next cell shows the current setting as a static
    image, which is what GitHub displays.
    """

    figsize = (7.0, 4.0)

    def __init__(self, controls: dict):
        self.controls = dict(controls)
        self.figure = Figure(figsize=self.figsize, dpi=100, layout="constrained")
        self.image = widgets.Image(format="png")
        self.draws = 0
        # JupyterLab 4.6 with ipykernel 7 delivers widget messages on a kernel subshell, a
        # thread of its own, so a slider's redraw can run while a cell's redraw is drawing on
        # the same Figure; interleaved, they corrupt it and every later PNG comes out blank
        # (seen in the browser test of chapter 6). One draw at a time:
        self._drawing = threading.RLock()
        for control in self.controls.values():
            control.observe(self._changed, names="value")
        self.widget = widgets.VBox([widgets.HBox(list(self.controls.values())), self.image])
        self.redraw()

    @property
    def values(self) -> dict:
        return {name: control.value for name, control in self.controls.items()}

    def draw(self, fig: Figure, **values) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def redraw(self) -> None:
        """Draw the figure for the controls' current values and show it as the image's PNG."""
        with self._drawing:
            self.figure.clear()
            self.draw(self.figure, **self.values)
            buffer = io.BytesIO()
            self.figure.savefig(buffer, format="png")
            self.image.value = buffer.getvalue()
            self.draws += 1

    def _changed(self, _change) -> None:
        self.redraw()

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)
