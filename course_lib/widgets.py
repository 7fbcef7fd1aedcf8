"""Shared ipywidgets helpers: a few controls wired to a function that redraws a figure.

Every chapter's explorer has the same shape: sliders (learning rate, batch size, width,
sparsity, bits, ...) and one function ``update(**values)`` that recomputes and returns a
matplotlib figure from their current values.  :func:`explorer` wires them together with
an image widget, so the figure is redrawn whenever a control changes.

Two rules the course keeps for explorers:

- ``update`` must respond in well under a second (it runs on every slider release:
  the sliders made here use ``continuous_update=False`` so dragging does not queue
  dozens of redraws);
- the notebook also calls ``update(**defaults)`` and ``plt.show()`` once in a plain cell,
  so the default view is a static figure that reads well where no kernel runs (GitHub, nbviewer).
"""

from __future__ import annotations

import io
import numbers

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

__all__ = ["log_slider", "choice_slider", "explorer", "current_values", "figure_png", "Explorer",
           "CONTROL_LAYOUT"]

#: How each control sits in the explorer's wrapping row: it grows from a 340 px basis and wraps
#: onto a new row rather than shrink below 300 px, so a slider's track stays usable (the browser
#: test asserts >= 80 px at 1400x900 with JupyterLab's file browser open).
CONTROL_LAYOUT = {"flex": "1 1 340px", "min_width": "300px", "max_width": "560px"}


def log_slider(description: str, value: float, low: float, high: float, *,
               steps_per_decade: int = 10, readout_format: str = ".3g") -> widgets.FloatLogSlider:
    """A base-10 logarithmic slider from ``low`` to ``high`` (learning rates, weight decays).

    ``steps_per_decade`` positions per factor of 10; ``value`` must lie in ``[low, high]``.
    """
    for name, v in (("value", value), ("low", low), ("high", high)):
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not np.isfinite(v) or v <= 0:
            raise ValueError(f"{name} must be a finite positive number, got {v!r}")
    if not low < high:
        raise ValueError(f"low must be < high, got low={low!r}, high={high!r}")
    if not low <= value <= high:
        raise ValueError(f"value must be in [{low}, {high}], got {value!r}")
    if isinstance(steps_per_decade, bool) or not isinstance(steps_per_decade, numbers.Integral) \
            or steps_per_decade < 1:
        raise ValueError(f"steps_per_decade must be a positive integer, got {steps_per_decade!r}")
    return widgets.FloatLogSlider(
        value=value, base=10, min=float(np.log10(low)), max=float(np.log10(high)),
        step=1.0 / steps_per_decade, description=description, readout_format=readout_format,
        continuous_update=False, style={"description_width": "initial"})


def choice_slider(description: str, options, value=None) -> widgets.SelectionSlider:
    """A slider over a fixed list of options (batch sizes, widths, bit widths, ...).

    ``value`` defaults to the first option and must be one of ``options``.
    """
    options = list(options)
    if not options:
        raise ValueError("options must not be empty")
    if value is None:
        value = options[0]
    if value not in options:
        raise ValueError(f"value must be one of {options}, got {value!r}")
    return widgets.SelectionSlider(options=options, value=value, description=description,
                                   continuous_update=False, style={"description_width": "initial"})


def current_values(controls: dict) -> dict:
    """``{name: control.value}``: the keyword arguments ``update`` receives."""
    return {name: control.value for name, control in controls.items()}


def figure_png(fig, *, dpi: int | None = None) -> bytes:
    """Render a matplotlib figure to PNG bytes (what the explorer's image shows)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


class Explorer(widgets.VBox):
    """The box :func:`explorer` returns: controls (wrapping onto rows) above the plot image.

    Its text form, what a notebook shows where no kernel runs the widget (an untrusted or
    freshly cloned notebook, GitHub), names the explorer's controls and says how to use it
    instead of ipywidgets' ``VBox(children=(HBox(...`` repr.
    """

    def __repr__(self):
        names = ", ".join(str(getattr(c, "description", "") or "?") for c in self.children[0].children)
        return (f"[interactive explorer: {names}. Run the notebook's cells to move its controls; "
                "the figure above shows its default view.]")

    def _repr_mimebundle_(self, **kwargs):
        data = super()._repr_mimebundle_(**kwargs)
        data["text/plain"] = repr(self)  # ipywidgets cuts its text at 110 characters
        return data


def explorer(update, controls: dict) -> Explorer:
    """Controls (wrapping onto rows) above an image of the figure ``update(**values)`` returns.

    update:   callable taking one keyword argument per control and returning a matplotlib
              ``Figure`` (it must not show it); called once right away and again after every
              change of a control's value.  The figure is rendered to PNG and closed.
    controls: ``{argument name: ipywidgets value widget}`` (e.g. from :func:`log_slider`).

    Returns the :class:`Explorer` (a ``VBox``) to display; ``.children[0]`` is the row of
    controls (each given :data:`CONTROL_LAYOUT`), ``.children[1]`` the ``ipywidgets.Image``,
    shown at the figure's natural size (at most the output's width; never stretched to it).

    Why an image instead of ``interactive_output``'s ``Output`` area: text printed into an
    ``Output`` widget is routed differently by JupyterLab, ``nbconvert --execute`` and
    nbval, so stored notebooks would not validate; an image widget behaves the same
    everywhere (and headless, which makes the callback testable).
    """
    if not callable(update):
        raise TypeError(f"update must be callable, got {update!r}")
    if not isinstance(controls, dict) or not controls:
        raise ValueError(f"controls must be a non-empty dict of widgets, got {controls!r}")
    for name, control in controls.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"controls keys must be argument names, got {name!r}")
        if not isinstance(control, widgets.ValueWidget):
            raise TypeError(f"controls[{name!r}] must be an ipywidgets value widget, "
                            f"got {type(control).__name__}")
    image = widgets.Image(format="png", layout=widgets.Layout(max_width="100%", height="auto"))

    def redraw(change=None):
        fig = update(**current_values(controls))
        if not isinstance(fig, Figure):
            raise TypeError(f"update must return a matplotlib Figure, got {type(fig).__name__}")
        try:
            image.value = figure_png(fig)
        finally:
            plt.close(fig)  # else the inline backend would also show it below the cell

    for control in controls.values():
        control.observe(redraw, "value")
    redraw()
    for control in controls.values():
        for key, value in CONTROL_LAYOUT.items():
            setattr(control.layout, key, value)
    row = widgets.HBox(list(controls.values()), layout=widgets.Layout(flex_flow="row wrap", width="100%"))
    # align_items="flex-start": a column box stretches its children to its width by default,
    # which scaled the plot image up to the output's width (blurry, text larger than the figure's)
    box = Explorer([row, image], layout=widgets.Layout(align_items="flex-start"))
    box.add_class("course-explorer")  # how the browser test (tests/test_browser.py) finds explorers
    return box
