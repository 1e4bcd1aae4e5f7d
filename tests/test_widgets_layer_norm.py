"""Chapter 6's LayerNorm explorer: the bars it draws are LayerNorm's numbers."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers.widgets.layer_norm import LayerNormExplorer, layer_norm_steps


def bar_heights(ax):
    (bars,) = ax.containers  # the one BarContainer; ax.patches also holds the mu +- sigma band
    return np.array([p.get_height() for p in bars])


def set_values(explorer, **values):
    for name, value in values.items():
        explorer.controls[name].value = value


def test_output_bars_are_F_layer_norm_of_the_input_bars():
    explorer = LayerNormExplorer()
    set_values(explorer, x1=0.0, x2=1.0, x3=2.0, x4=3.0, gamma=2.0, beta=0.5, eps=1e-5)
    ax_in, ax_out = explorer.figure.axes
    np.testing.assert_allclose(bar_heights(ax_in), [0.0, 1.0, 2.0, 3.0])
    x = torch.tensor([0.0, 1.0, 2.0, 3.0], dtype=torch.float64)
    expected = F.layer_norm(x, (4,), torch.full((4,), 2.0, dtype=torch.float64),
                            torch.full((4,), 0.5, dtype=torch.float64), eps=1e-5).numpy()
    np.testing.assert_allclose(bar_heights(ax_out), expected, rtol=1e-12, atol=1e-12)
    # by hand: mu = 1.5, sigma^2 = 1.25 (divide by d = 4)
    assert "mu = 1.500" in ax_in.get_title() and "sigma^2 = 1.250" in ax_in.get_title()
    assert "mean = 0.500" in ax_out.get_title()  # gamma * 0 + beta


def test_shifting_every_input_leaves_the_output_unchanged():
    explorer = LayerNormExplorer()
    set_values(explorer, x1=0.5, x2=-1.0, x3=2.0, x4=0.0)
    before = bar_heights(explorer.figure.axes[1])
    set_values(explorer, x1=1.5, x2=0.0, x3=3.0, x4=1.0)  # every x_i + 1
    after = bar_heights(explorer.figure.axes[1])
    assert not np.allclose(bar_heights(explorer.figure.axes[0]), [0.5, -1.0, 2.0, 0.0])
    np.testing.assert_allclose(after, before, atol=1e-9)


def test_large_eps_shrinks_the_output_towards_beta():
    explorer = LayerNormExplorer()
    set_values(explorer, x1=1.0, x2=-1.0, x3=1.0, x4=-1.0, gamma=1.0, beta=0.0, eps=1e-6)
    # sigma^2 = 1, so x_hat = x / sqrt(1 + eps)
    np.testing.assert_allclose(bar_heights(explorer.figure.axes[1]), [1, -1, 1, -1], atol=1e-6)
    explorer.controls["eps"].value = 3.0  # slider steps by 0.5 in log10; value snaps
    eps = explorer.controls["eps"].value
    np.testing.assert_allclose(bar_heights(explorer.figure.axes[1]),
                               np.array([1, -1, 1, -1]) / np.sqrt(1 + eps), rtol=1e-12)
    assert eps > 1


def test_gamma_scales_and_beta_shifts():
    steps = layer_norm_steps([1.0, -0.5, 2.0, 0.5], gamma=1.0, beta=0.0, eps=1e-5)
    scaled = layer_norm_steps([1.0, -0.5, 2.0, 0.5], gamma=2.5, beta=-1.0, eps=1e-5)
    np.testing.assert_allclose(scaled["output"], 2.5 * steps["output"] - 1.0, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(steps["x_hat"], steps["output"], atol=1e-15)


def test_redraws_once_per_change():
    explorer = LayerNormExplorer()
    draws = explorer.draws
    explorer.controls["beta"].value = 1.0
    assert explorer.draws == draws + 1
    assert "beta = 1.00" in explorer.figure.get_suptitle()


@pytest.mark.parametrize("bad, error", [(dict(x=np.ones((2, 2))), "x must be a non-empty vector"),
                                        (dict(eps=-1.0), "eps must be >= 0")])
def test_bad_input_is_named(bad, error):
    args = dict(x=np.ones(4), gamma=1.0, beta=0.0, eps=1e-5) | bad
    with pytest.raises(ValueError, match=error):
        layer_norm_steps(**args)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_extreme_settings_stay_inside_the_axes(sign):
    # one entry apart from three equal ones gives the largest |x_hat| for d = 4: sqrt(d - 1) = sqrt(3)
    explorer = LayerNormExplorer()
    set_values(explorer, x1=3.0 * sign, x2=-3.0 * sign, x3=-3.0 * sign, x4=-3.0 * sign,
               gamma=3.0, beta=2.0 * sign, eps=1e-6)
    ax_out = explorer.figure.axes[1]
    heights = bar_heights(ax_out)
    sigma2 = 6.75                                          # deviations 4.5, -1.5, -1.5, -1.5: mean square 6.75
    expected_extreme = sign * (3.0 * 4.5 / np.sqrt(sigma2 + 1e-6) + 2.0)
    assert abs(heights[0] - expected_extreme) < 1e-9
    assert abs(abs(heights[0]) - (3 * np.sqrt(3) + 2)) < 1e-5
    low, high = ax_out.get_ylim()
    assert low <= heights.min() and heights.max() <= high


def test_redraws_from_two_threads_never_corrupt_the_figure():
    # JupyterLab 4.6 + ipykernel 7 deliver widget messages on a kernel subshell (a thread), so a
    # slider's redraw can overlap a cell's; the explorer must serialise them (it once showed a
    # blank PNG from then on). Every PNG, during and after, must be a drawn figure.
    import threading

    from helpers.widgets.layer_norm import LayerNormExplorer

    explorer = LayerNormExplorer()
    blank = len(explorer.image.value) // 4            # an empty 800x340 figure is ~2 kB of ~28 kB
    sizes, errors = [], []

    def move(name, values):
        try:
            for value in values:
                explorer.controls[name].value = value
                sizes.append(len(explorer.image.value))
        except Exception as error:                    # noqa: BLE001 - reported below
            errors.append(repr(error))

    threads = [threading.Thread(target=move, args=(name, [0.1 * k * sign for k in range(1, 16)]))
               for name, sign in (("x1", 1), ("x3", -1))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert len(explorer.figure.axes) == 2
    assert min(sizes) > blank, sizes
    explorer.controls["gamma"].value = 2.0            # and it still draws afterwards
    assert len(explorer.image.value) > blank and len(explorer.figure.axes) == 2
