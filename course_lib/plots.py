"""The course's figure style and small shared plotting helpers.

Call :func:`use_course_style` once at the top of a notebook; every figure then has
the same fonts, sizes, grid and colour cycle.
"""

from __future__ import annotations

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
from matplotlib import scale, ticker

from course_lib.validation import as_array, check_positive

#: Colour cycle shared by every chapter (colour-blind friendly, Okabe-Ito).
COLORS = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]

STYLE = {
    "figure.figsize": (6.4, 4.0),
    "figure.dpi": 90,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.prop_cycle": mpl.cycler(color=COLORS),
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "lines.linewidth": 1.8,
    "image.cmap": "viridis",
    # STIX sans for math in figures: with the default (DejaVu) fonts a superscript \\star, as in
    # the optimum L^\\star, shrinks to a dot; STIX's star stays visible and its letters match
    "mathtext.fontset": "stixsans",
}


class CourseLogFormatter(ticker.LogFormatterSciNotation):
    """Log-axis labels: decades as 10^n, other ticks as plain numbers.

    matplotlib labels a non-decade tick ``1.06 x 10^0``; on an axis that spans less than a decade
    (where only such ticks are labelled) this reads ``1.06``, ``0.02``. Values outside
    [1e-3, 1e4) keep the scientific form.
    """

    def _non_decade_format(self, sign_string, base, fx, usetex):
        value = float(base) ** fx
        if 1e-3 <= value < 1e4:
            return r"$\mathdefault{%s%s}$" % (sign_string, f"{value:g}")
        return super()._non_decade_format(sign_string, base, fx, usetex)


def _course_log_scale_defaults(self, axis):
    """``LogScale.set_default_locators_and_formatters`` with :class:`CourseLogFormatter`."""
    axis.set_major_locator(ticker.LogLocator(self.base))
    axis.set_major_formatter(CourseLogFormatter(self.base))
    axis.set_minor_locator(ticker.LogLocator(self.base, self.subs))
    axis.set_minor_formatter(CourseLogFormatter(self.base, labelOnlyBase=(self.subs is not None)))


def use_course_style() -> None:
    """Apply the course style to every figure drawn afterwards.

    Besides ``STYLE``, every log axis made afterwards (``set_yscale("log")``, ``semilogy``,
    ``loglog``, :func:`loss_curve`) labels its ticks with :class:`CourseLogFormatter`.
    """
    mpl.rcParams.update(STYLE)
    scale.LogScale.set_default_locators_and_formatters = _course_log_scale_defaults


def loss_curve(ax, values, *, x=None, label=None, logy: bool = True, xlabel: str = "step",
               ylabel: str = "loss"):
    """Plot a loss curve on ``ax`` (log scale by default: losses span decades)."""
    values = np.asarray(values, dtype=float)
    x = np.arange(values.size) if x is None else np.asarray(x)
    ax.plot(x, values, label=label)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    return ax


def show_images(images, labels=None, *, ncols: int = 10, cmap: str = "gray_r", size: float = 0.9,
                title: str | None = None):
    """A grid of small images (e.g. digits ``(n, 8, 8)``) with optional per-image labels."""
    images = np.asarray(images)
    n = images.shape[0]
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows * 1.15), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(images[i], cmap=cmap)
            if labels is not None:
                ax.set_title(str(labels[i]), fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def loss_contours(ax, W, B, L, *, n_levels: int = 14, lowest: float | None = None, colorbar=True,
                  label: str = "loss (contour levels)", cmap: str = "viridis", bar_kw: dict | None = None):
    """Contour lines of a loss surface on ``ax``, log-spaced, with a colour bar that reads them.

    W, B, L: 2-D arrays of one shape (``np.meshgrid`` order): the two parameters and the loss at each
    pair. The levels are ``np.geomspace(1.05 * lowest, L.max(), n_levels)`` (``lowest`` defaults to
    ``L.min()``; pass the true minimum L* when the grid does not contain it): the interesting part
    of a bowl is near its bottom; colours and the bar are on a log scale too. ``colorbar``: True draws a bar beside ``ax``; a list of axes draws
    one bar shared by them (draw the same levels on each); False draws none. ``bar_kw`` goes to
    ``Figure.colorbar`` (e.g. ``{"shrink": 0.8}``).
    Returns the ``ContourSet``.
    """
    W = as_array("W", W, ndim=2)
    B = as_array("B", B, ndim=2)
    L = as_array("L", L, ndim=2)
    if not W.shape == B.shape == L.shape:
        raise ValueError(f"W, B and L must have one shape, got {W.shape}, {B.shape} and {L.shape}")
    check_positive("n_levels", n_levels, integer=True)
    lowest = float(L.min()) if lowest is None else lowest
    if not 0 < 1.05 * lowest < L.max():
        raise ValueError(f"lowest must be positive and below L.max() / 1.05 = {L.max() / 1.05:.4g}, "
                         f"got {lowest!r}")
    levels = np.geomspace(1.05 * lowest, L.max(), n_levels)
    cs = ax.contour(W, B, L, levels=levels, cmap=cmap, linewidths=0.8,
                    norm=mpl.colors.LogNorm(levels[0], levels[-1]))   # colours spread like the levels
    if colorbar is not False:
        host = ax if colorbar is True else list(colorbar)
        bar = ax.figure.colorbar(cs, ax=host, label=label, **{"pad": 0.02, **(bar_kw or {})})
        lo, hi = levels[0], levels[-1]                 # round ticks (1, 2, 5 x 10^k) inside the range
        ticks = [m * 10.0**k for k in range(int(np.floor(np.log10(lo))), int(np.ceil(np.log10(hi))) + 1)
                 for m in (1, 2, 5) if lo <= m * 10.0**k <= hi]
        bar.set_ticks(ticks, labels=[f"{t:g}" for t in ticks])
        bar.ax.minorticks_off()
    return cs


def steps_in_frame(path, xlim, ylim) -> int:
    """How many leading points of ``path`` lie inside the rectangle ``xlim`` x ``ylim``.

    path: (k, 2) array of (x, y) points (non-finite points count as outside). Draw
    ``path[:steps_in_frame(...)]`` to show a diverging path up to where it leaves the frame,
    and say so, instead of letting it fill the panel. Returns an int in [0, k].
    """
    path = as_array("path", path, ndim=2, dtype_kind="fiu", finite=False)
    if path.shape[1] != 2:
        raise ValueError(f"path must have shape (k, 2), got {path.shape}")
    for name, lim in (("xlim", xlim), ("ylim", ylim)):
        if len(lim) != 2 or not lim[0] < lim[1]:
            raise ValueError(f"{name} must be (low, high) with low < high, got {lim!r}")
    with np.errstate(invalid="ignore"):
        inside = ((path[:, 0] >= xlim[0]) & (path[:, 0] <= xlim[1])
                  & (path[:, 1] >= ylim[0]) & (path[:, 1] <= ylim[1]))
    return int(path.shape[0] if inside.all() else np.argmin(inside))
