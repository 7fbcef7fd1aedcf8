"""The shared figure style and plotting helpers."""

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest

from course_lib import plots


def test_use_course_style_sets_the_colour_cycle_and_grid():
    matplotlib.rcdefaults()
    plots.use_course_style()
    colors = [c["color"] for c in matplotlib.rcParams["axes.prop_cycle"]]
    assert colors == plots.COLORS
    assert matplotlib.rcParams["axes.grid"] is True
    matplotlib.rcdefaults()


def test_loss_curve_plots_values_with_labels_and_log_scale():
    fig, ax = plt.subplots()
    plots.loss_curve(ax, [4.0, 2.0, 1.0], label="train")
    line = ax.get_lines()[0]
    np.testing.assert_array_equal(line.get_xdata(), [0, 1, 2])
    np.testing.assert_array_equal(line.get_ydata(), [4.0, 2.0, 1.0])
    assert ax.get_yscale() == "log" and ax.get_xlabel() == "step" and ax.get_ylabel() == "loss"
    fig2, ax2 = plt.subplots()
    plots.loss_curve(ax2, [1.0, 2.0], x=[10, 20], logy=False, xlabel="epoch")
    assert ax2.get_yscale() == "linear" and ax2.get_xlabel() == "epoch"
    np.testing.assert_array_equal(ax2.get_lines()[0].get_xdata(), [10, 20])
    plt.close("all")


def test_show_images_draws_one_panel_per_image_and_hides_spare_axes():
    images = np.arange(7 * 64, dtype=float).reshape(7, 8, 8)
    fig = plots.show_images(images, labels=list("abcdefg"), ncols=3, title="digits")
    axes = fig.get_axes()
    assert len(axes) == 9  # 3 rows x 3 columns
    with_images = [ax for ax in axes if ax.get_images()]
    assert len(with_images) == 7
    assert [ax.get_title() for ax in with_images] == list("abcdefg")
    np.testing.assert_array_equal(with_images[2].get_images()[0].get_array(), images[2])
    assert fig._suptitle.get_text() == "digits"
    plt.close("all")


def _dark_pixels(text):
    fig = plt.figure(figsize=(1, 1), dpi=200)
    fig.text(0.1, 0.3, text, fontsize=20)
    fig.canvas.draw()
    red = np.asarray(fig.canvas.buffer_rgba())[..., 0]
    plt.close(fig)
    return int((red < 128).sum())


def test_a_superscript_star_is_drawn_as_a_visible_star():
    # with matplotlib's default math font the star of L^\star was a dot: 15% of the ink of "L"
    try:
        plots.use_course_style()
        star = _dark_pixels(r"$L^\star$") - _dark_pixels(r"$L$")
        assert star > 0.35 * _dark_pixels(r"$L$")
    finally:
        matplotlib.rcdefaults()


def test_log_axis_labels_read_as_plain_numbers_inside_a_decade():
    plots.use_course_style()
    try:
        fig, (narrow, wide) = plt.subplots(1, 2)
        narrow.semilogy([0, 1], [1.05, 1.08])               # less than a decade: only non-decade ticks
        wide.loglog([1e-6, 1.0], [1e-12, 10.0])
        fig.canvas.draw()
        labels = [t.get_text() for t in narrow.yaxis.get_majorticklabels() + narrow.yaxis.get_minorticklabels()
                  if t.get_text()]
        assert labels and not any("times" in t for t in labels), labels   # no "1.06 x 10^0"
        assert r"$\mathdefault{1.06}$" in labels
        decades = [t.get_text() for t in wide.yaxis.get_majorticklabels() if t.get_text()]
        assert r"$\mathdefault{10^{-8}}$" in decades                          # decades keep 10^n
        assert plots.CourseLogFormatter(10)(2e-5) == r"$\mathdefault{2\times10^{-5}}$"  # far from 1: sci
    finally:
        plt.close("all")
        matplotlib.rcdefaults()


def _bowl():
    W, B = np.meshgrid(np.linspace(-3, 3, 61), np.linspace(-2, 2, 41))
    return W, B, 0.1 + W**2 + 5 * B**2


def test_loss_contours_draws_log_spaced_levels_and_a_colour_bar():
    W, B, L = _bowl()
    fig, ax = plt.subplots()
    cs = plots.loss_contours(ax, W, B, L, n_levels=9, label="MSE")
    np.testing.assert_allclose(cs.levels, np.geomspace(1.05 * L.min(), L.max(), 9))
    bar = [a for a in fig.axes if a is not ax]
    assert len(bar) == 1 and bar[0].get_ylabel() == "MSE"                 # one bar, labelled
    ticks = bar[0].get_yticks()
    assert len(ticks) >= 2 and np.all((ticks >= cs.levels[0]) & (ticks <= cs.levels[-1]))
    assert all(np.log10(t / 10 ** np.floor(np.log10(t))).round(6) in (0, 0.30103, 0.69897) for t in ticks)
    # colours are spread over the log-spaced levels: the lowest and highest use the ends of the colour map
    assert cs.norm(cs.levels[0]) == 0 and cs.norm(cs.levels[-1]) == 1 and 0.4 < cs.norm(cs.levels[4]) < 0.6
    np.testing.assert_allclose(plots.loss_contours(ax, W, B, L, lowest=0.05, colorbar=False).levels[0], 0.0525)
    assert len(fig.axes) == 2                                               # colorbar=False adds none
    plt.close("all")


def test_loss_contours_shares_one_bar_between_panels_and_checks_arguments():
    W, B, L = _bowl()
    fig, axes = plt.subplots(1, 3)
    for ax in axes:
        plots.loss_contours(ax, W, B, L, colorbar=list(axes) if ax is axes[-1] else False, bar_kw={"shrink": 0.5})
    assert len(fig.axes) == 4
    fig.canvas.draw()
    bar_h, ax_h = fig.axes[-1].get_position().height, axes[0].get_position().height
    assert bar_h == pytest.approx(0.5 * ax_h, rel=0.05)                    # bar_kw reaches Figure.colorbar
    with pytest.raises(ValueError, match="W, B and L must have one shape"):
        plots.loss_contours(axes[0], W, B, L[:-1])
    with pytest.raises(ValueError, match="lowest must be positive"):
        plots.loss_contours(axes[0], W, B, L, lowest=-1.0)
    with pytest.raises(ValueError, match="L must be 2-dimensional"):
        plots.loss_contours(axes[0], W, B, L.ravel())
    plt.close("all")


def test_steps_in_frame_counts_the_leading_points_inside():
    path = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [5.0, 0.0], [0.0, 0.0]])
    assert plots.steps_in_frame(path, (-1, 2), (-1, 2)) == 3                # on the edge counts as inside
    assert plots.steps_in_frame(path, (-1, 10), (-1, 10)) == 5              # all inside
    assert plots.steps_in_frame(path, (0.5, 2), (-1, 2)) == 0               # the first point is outside
    assert plots.steps_in_frame(path, (-1, 10), (-1, 1.5)) == 2             # y leaves first
    assert plots.steps_in_frame([[0, 0], [np.inf, 0], [0, 0]], (-1, 1), (-1, 1)) == 1   # inf: outside
    assert plots.steps_in_frame([[0.0, np.nan]], (-1, 1), (-1, 1)) == 0
    with pytest.raises(ValueError, match=r"path must have shape \(k, 2\)"):
        plots.steps_in_frame(np.zeros((3, 3)), (0, 1), (0, 1))
    with pytest.raises(ValueError, match="xlim must be"):
        plots.steps_in_frame(path, (1, 0), (0, 1))
