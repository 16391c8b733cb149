"""runlint.curves: smoothing, windows, trends, noise and warm-up detection."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from runlint.analysis import curves
from runlint.run import Run


def test_ema_of_a_constant_is_that_constant_from_the_first_point() -> None:
    out = curves.ema(np.full(50, 3.0), span=10)
    assert np.allclose(out, 3.0)


def test_ema_lags_a_step_and_then_reaches_it() -> None:
    values = np.r_[np.zeros(50), np.ones(200)]
    out = curves.ema(values, span=10)
    assert out[52] < 0.5
    assert out[-1] == pytest.approx(1.0, abs=1e-6)


def test_rolling_median_removes_a_single_spike() -> None:
    values = np.ones(30)
    values[10] = 100.0
    assert curves.rolling_median(values, 5).max() == 1.0


def test_noise_residual_of_a_smooth_curve_is_small_and_of_noise_is_not() -> None:
    rng = np.random.default_rng(0)
    x = np.linspace(0, 1, 500)
    smooth = 2.0 * np.exp(-3 * x)
    _, residual = curves.noise(smooth, span=25)
    noisy = smooth * (1 + 0.3 * rng.standard_normal(x.size))
    _, noisy_residual = curves.noise(noisy, span=25)
    assert (np.abs(residual) / smooth).max() < 0.05  # edges included
    relative = noisy_residual / smooth
    robust_std = 1.4826 * np.median(np.abs(relative - np.median(relative)))
    assert robust_std == pytest.approx(0.3, rel=0.25)


def test_warmup_end_and_decays_follow_the_schedule() -> None:
    warm = np.r_[np.linspace(0.001, 0.1, 100), np.full(400, 0.1)]
    assert curves.warmup_end(warm) == pytest.approx(98, abs=3)
    assert not curves.decays(warm)  # warm-up then constant never decays
    step = np.r_[np.full(200, 0.1), np.full(200, 0.05)]
    assert curves.warmup_end(step) == 0
    assert curves.decays(step)
    assert not curves.decays(np.full(100, 0.01))


def _run(loss: np.ndarray, lr: np.ndarray) -> Run:
    return Run(Path("run"), steps=_frame(loss, lr))


def _frame(loss: np.ndarray, lr: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"loss": loss, "lr": lr}, index=pd.RangeIndex(len(loss), name="step"))


def test_prepare_skips_warm_up_keeps_the_initial_loss_and_caches() -> None:
    loss = np.linspace(3.0, 1.0, 300)
    lr = np.r_[np.linspace(0.01, 0.1, 50), np.full(250, 0.1)]
    frame = _run(loss, lr)
    curve = curves.prepare(frame)
    assert curve is not None
    assert curve.steps[0] >= 45
    assert curve.initial == pytest.approx(3.0, abs=0.05)
    assert curves.prepare(frame) is curve
    with pytest.raises(ValueError):
        curve.values[0] = 0.0  # shared between rules: read-only


def test_prepare_drops_non_finite_values_and_refuses_short_curves() -> None:
    loss = np.r_[np.linspace(2.0, 1.0, 40), np.full(5, np.nan)]
    curve = curves.prepare(_run(loss, np.full(45, 0.1)))
    assert curve is not None and len(curve.values) == 40
    assert curves.prepare(_run(np.ones(5), np.ones(5))) is None


def test_curve_level_is_the_median_of_its_window() -> None:
    loss = np.r_[np.full(100, 2.0), np.full(100, 1.0)]
    loss[3] = 50.0
    curve = curves.prepare(_run(loss, np.full(200, 0.1)))
    assert curve is not None
    assert curve.level(0.0) == 2.0
    assert curve.level(1.0) == 1.0
    assert curve.relative_drop() == pytest.approx(0.5, abs=0.01)  # the spike does not count
