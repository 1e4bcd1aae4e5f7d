"""Chapter 5's positional-encoding explorer (helpers/widgets/positional.py)."""
import math

import numpy as np
import pytest

from helpers.widgets.positional import PositionalExplorer, positional_setting


def pe_by_hand(n, d):
    pe = np.zeros((n, d))
    for pos in range(n):
        for i in range(d // 2):
            angle = pos / 10000 ** (2 * i / d)
            pe[pos, 2 * i], pe[pos, 2 * i + 1] = math.sin(angle), math.cos(angle)
    return pe


@pytest.fixture(scope="module")
def explorer():
    return PositionalExplorer(d_model=32, n_positions=80, max_offset=60)


def lines_by_label(ax):
    return {line.get_label(): line for line in ax.lines}


def test_left_panel_plots_the_chosen_pair_against_position(explorer):
    explorer.controls["pair"].value = 3
    ax = explorer.figure.axes[0]
    lines = lines_by_label(ax)
    pos = np.arange(80)
    omega = 10000 ** (-6 / 32)
    sin, cos = lines["PE[pos, 6] = sin"], lines["PE[pos, 7] = cos"]
    np.testing.assert_array_equal(sin.get_xdata(), pos)
    np.testing.assert_allclose(sin.get_ydata(), np.sin(pos * omega), atol=1e-12)
    np.testing.assert_allclose(cos.get_ydata(), np.cos(pos * omega), atol=1e-12)
    assert f"wavelength {2 * math.pi / omega:.4g} positions" in ax.get_title()


def test_right_panel_is_the_dot_product_for_any_position(explorer):
    explorer.controls["pair"].value = 5
    explorer.controls["offset"].value = 17
    ax = explorer.figure.axes[1]
    lines = lines_by_label(ax)
    pe = pe_by_hand(11 + 61, 32)
    expected = np.array([pe[11] @ pe[11 + k] for k in range(61)])   # from position 11, not 0
    dot = lines["PE(pos)\u00b7PE(pos+k)"]
    np.testing.assert_array_equal(dot.get_xdata(), np.arange(61))
    np.testing.assert_allclose(dot.get_ydata(), expected, atol=1e-10)
    assert dot.get_ydata()[0] == pytest.approx(32 / 2)               # |PE(pos)|^2 = d_model/2
    term = lines["pair 5's term cos(k\u03c9)"]
    np.testing.assert_allclose(term.get_ydata(), np.cos(np.arange(61) * 10000 ** (-10 / 32)), atol=1e-12)
    x, y = lines["chosen k"].get_data()
    assert list(x) == [17] and y[0] == pytest.approx(expected[17], abs=1e-10)
    assert f"PE(pos)\u00b7PE(pos+17) = {expected[17]:.4f}" in ax.get_title()


def test_changing_the_pair_leaves_the_dot_curve_alone(explorer):
    explorer.controls["pair"].value = 0
    first = lines_by_label(explorer.figure.axes[1])["PE(pos)\u00b7PE(pos+k)"].get_ydata().copy()
    explorer.controls["pair"].value = 15
    second = lines_by_label(explorer.figure.axes[1])["PE(pos)\u00b7PE(pos+k)"].get_ydata()
    np.testing.assert_array_equal(first, second)
    # the slowest pair of d_model=32 barely moves over 80 positions: cos stays near 1
    assert lines_by_label(explorer.figure.axes[0])["PE[pos, 31] = cos"].get_ydata().min() > 0.99


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="pair must be an integer in 0..15"):
        positional_setting(16, 0, d_model=32)
    with pytest.raises(ValueError, match="offset"):
        positional_setting(0, 101)
    with pytest.raises(ValueError, match="d_model must be an even integer"):
        PositionalExplorer(d_model=7)
