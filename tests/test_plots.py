"""The shared figure style and plotting helpers."""

import matplotlib
import matplotlib.pyplot as plt
import numpy as np

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
