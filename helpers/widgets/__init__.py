"""Interactive explorers for the chapters, one module per chapter.

Each explorer is a :class:`~helpers.widgets.explorer.Explorer`: a few ipywidgets
controls, a matplotlib Figure drawn from a pure function of the controls' values, and an
``ipywidgets.Image`` that shows that figure as a PNG. Changing a control redraws the
figure at once, so a test can set ``explorer.controls["name"].value`` and assert on
``explorer.figure`` without a browser or a kernel.
"""
from .explorer import Explorer

__all__ = ["Explorer"]
