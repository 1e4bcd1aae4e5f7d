"""Chapter 12's rotary explorer (helpers/widgets/rotary.py): the lines it draws are RoPE's scores."""
import math

import numpy as np
import pytest

from helpers.widgets.rotary import RotaryExplorer, rotary_setting

D, MAX_OFFSET = 16, 20


def rotate_by_hand(v, position, theta, interleaved):
    d = len(v)
    out = np.array(v, dtype=float)
    for m in range(d // 2):
        angle = position * theta ** (-2 * m / d)
        ia, ib = (2 * m, 2 * m + 1) if interleaved else (m, m + d // 2)
        a, b = v[ia], v[ib]
        out[ia], out[ib] = a * math.cos(angle) - b * math.sin(angle), a * math.sin(angle) + b * math.cos(angle)
    return out


def lines(ax):
    return {line.get_label(): line for line in ax.lines}


@pytest.fixture(scope="module")
def explorer():
    return RotaryExplorer(d=D, max_offset=MAX_OFFSET, pairs=(0, D // 2 - 1), position=MAX_OFFSET)


def set_values(explorer, **values):
    for name, value in values.items():
        explorer.controls[name].value = value


def score_line(explorer):
    (label,) = [name for name in lines(explorer.figure.axes[0]) if name.startswith("rotated at")]
    return lines(explorer.figure.axes[0])[label]


def test_score_line_is_the_rotated_dot_product(explorer):
    set_values(explorer, theta=500000.0, pairing=False, pairs=(1, 5), position=137)
    s = explorer.setting
    q, k = s["q"], s["k"]
    # the inactive pairs (split halves: features m and m + 8) are zero in q and k
    for m in (0, 6, 7):
        assert q[m] == q[m + 8] == k[m] == k[m + 8] == 0.0
    expected = [rotate_by_hand(q, 137, 500000.0, False) @ rotate_by_hand(k, 137 + off, 500000.0, False)
                for off in range(-MAX_OFFSET, MAX_OFFSET + 1)]
    line = score_line(explorer)
    np.testing.assert_array_equal(line.get_xdata(), np.arange(-MAX_OFFSET, MAX_OFFSET + 1))
    np.testing.assert_allclose(line.get_ydata(), expected, rtol=0, atol=1e-10)
    assert line.get_label() == "rotated at i = 137 and j = i + offset"
    offset_line = lines(explorer.figure.axes[0])["function of the offset"]
    np.testing.assert_allclose(offset_line.get_ydata(), expected, rtol=0, atol=1e-10)
    assert lines(explorer.figure.axes[0])["no rotation: q·k"].get_ydata()[0] == pytest.approx(q @ k)


def test_moving_the_query_moves_nothing(explorer):
    set_values(explorer, theta=10000.0, pairing=True, pairs=(0, 7), position=MAX_OFFSET)
    first = score_line(explorer).get_ydata().copy()
    for position in (MAX_OFFSET + 1, 400, MAX_OFFSET + 1000):
        explorer.controls["position"].value = position
        np.testing.assert_allclose(score_line(explorer).get_ydata(), first, rtol=0, atol=1e-9)
    # the score at offset 0 is the unrotated q . k (both turned by the same angle)
    assert first[MAX_OFFSET] == pytest.approx(explorer.setting["q"] @ explorer.setting["k"], abs=1e-12)


def test_one_active_pair_gives_a_pure_sinusoid(explorer):
    set_values(explorer, theta=100.0, pairing=True, pairs=(2, 2), position=50)
    s = explorer.setting
    omega = 100.0 ** (-4 / D)
    zq = s["q"][4] + 1j * s["q"][5]
    zk = s["k"][4] + 1j * s["k"][5]
    offsets = np.arange(-MAX_OFFSET, MAX_OFFSET + 1)
    expected = abs(zq) * abs(zk) * np.cos(offsets * omega - np.angle(zq * np.conj(zk)))
    np.testing.assert_allclose(score_line(explorer).get_ydata(), expected, rtol=0, atol=1e-10)


def test_wavelength_bars_follow_theta_and_the_active_pairs(explorer):
    set_values(explorer, theta=1000000.0, pairs=(3, 6))
    ax = explorer.figure.axes[1]
    heights = np.array([p.get_height() for p in ax.patches])
    np.testing.assert_allclose(heights, [2 * math.pi * 1e6 ** (2 * m / D) for m in range(D // 2)], rtol=1e-12)
    colors = [p.get_facecolor() for p in ax.patches]
    active = [m for m in range(D // 2) if colors[m] != colors[0]]
    assert active == [3, 4, 5, 6]
    assert ax.get_yscale() == "log"
    assert f"longest active: {2 * math.pi * 1e6 ** (12 / D):.4g}" in ax.get_title()
    explorer.controls["theta"].value = 100.0
    heights_small = np.array([p.get_height() for p in explorer.figure.axes[1].patches])
    assert heights_small[0] == pytest.approx(2 * math.pi) and np.all(heights_small[1:] < heights[1:])


def test_the_pairing_changes_the_curve_for_the_same_vectors(explorer):
    set_values(explorer, theta=10000.0, pairs=(0, D // 2 - 1), position=MAX_OFFSET)
    explorer.controls["pairing"].value = True
    interleaved = score_line(explorer).get_ydata().copy()
    explorer.controls["pairing"].value = False
    split = score_line(explorer).get_ydata()
    assert np.abs(interleaved - split).max() > 0.1
    np.testing.assert_allclose(interleaved[MAX_OFFSET], split[MAX_OFFSET], atol=1e-12)   # offset 0: q . k


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="pairs must satisfy 0 <= first <= last <= 15"):
        rotary_setting(10000.0, True, (3, 16), 64)
    with pytest.raises(ValueError, match="position must be an integer >= max_offset = 64"):
        rotary_setting(10000.0, True, (0, 3), 10)
    with pytest.raises(ValueError, match="d must be an even integer"):
        rotary_setting(10000.0, True, (0, 1), 64, d=7)
    with pytest.raises(ValueError, match="theta must be a finite number > 0"):
        rotary_setting(-1.0, True, (0, 1), 64)
    with pytest.raises(ValueError, match="theta must be one of"):
        RotaryExplorer(theta=123.0)
