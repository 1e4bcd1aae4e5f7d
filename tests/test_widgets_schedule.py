"""Drive chapter 9's schedule explorer: the curve is noam_lr, the peak is (d w)^-0.5 scale."""
import math

import numpy as np

import helpers
from helpers.widgets.schedule import ScheduleExplorer


def curve_and_peak(explorer):
    curve, peak = explorer.figure.axes[0].lines[:2]
    return (np.asarray(curve.get_xdata()), np.asarray(curve.get_ydata()),
            (float(peak.get_xdata()[0]), float(peak.get_ydata()[0])))


def check(explorer, d_model, warmup, scale):
    steps, rates, (peak_step, peak_rate) = curve_and_peak(explorer)
    assert steps[0] == 1
    np.testing.assert_allclose(rates, scale * helpers.noam_lr(steps.astype(int), d_model, warmup),
                               rtol=1e-14)
    # independent of the code: where the branches step^-0.5 and step warmup^-1.5 cross
    assert peak_step == warmup
    assert math.isclose(peak_rate, scale / math.sqrt(d_model * warmup), rel_tol=1e-12)
    assert math.isclose(rates.max(), peak_rate, rel_tol=1e-12)
    assert steps[np.argmax(rates)] == warmup


def test_default_is_the_paper_setting():
    e = ScheduleExplorer()
    check(e, 512, 4000, 1.0)
    assert math.isclose(curve_and_peak(e)[2][1], 512 ** -0.5 * 4000 ** -0.5)
    assert "d_model=512" in e.figure.axes[0].get_title()


def test_controls_move_the_curve_and_the_peak():
    e = ScheduleExplorer()
    e.controls["d_model"].value = 128
    e.controls["warmup"].value = 1500
    e.controls["scale"].value = 2.5
    check(e, 128, 1500, 2.5)
    assert "warmup=1500" in e.figure.axes[0].get_title()
