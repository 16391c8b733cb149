"""Curve helpers for the loss-curve rules: smoothing, windows, trends, noise and plateaus.

Everything here is vectorized numpy on whole columns (no per-row Python loops) and torch-free.
Functions take 1-D arrays and ignore non-finite values where stated.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from runlint.run import Run

__all__ = [
    "MIN_CURVE_POINTS",
    "MIN_FEW_POINTS",
    "Curve",
    "Levels",
    "decays",
    "ema",
    "finite",
    "levels",
    "lr_after_warmup",
    "noise",
    "prepare",
    "prepare_falling",
    "rolling_median",
    "series",
    "warmup_end",
]


def series(frame: pd.DataFrame, column: str) -> tuple[np.ndarray, np.ndarray]:
    """``(index, values)`` of a column as float arrays, rows with a non-finite value dropped."""
    if column not in frame.columns:
        return np.empty(0), np.empty(0)
    values = _floats(frame[column])
    index = frame.index.to_numpy(dtype=float)
    keep = np.isfinite(values)
    return index[keep], values[keep]


def _floats(column: pd.Series) -> np.ndarray:
    """A column as float64 (missing values as NaN), without a copy when it already is one."""
    if column.dtype == np.float64:
        return column.to_numpy()
    return column.to_numpy(dtype=float, na_value=np.nan)


def finite(values: np.ndarray) -> np.ndarray:
    """The finite values of ``values``."""
    values = np.asarray(values, dtype=float)
    return values[np.isfinite(values)]


def ema(values: np.ndarray, span: float) -> np.ndarray:
    """Bias-corrected exponential moving average (TensorBoard-style smoothing).

    ``span`` is the effective window in samples (alpha = 2 / (span + 1)).
    """
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return values
    alpha = 2.0 / (max(span, 1.0) + 1.0)
    beta = 1.0 - alpha
    if np.isfinite(values).all():  # the same sums as below, without importing scipy.signal
        smooth: np.ndarray = (
            pd.Series(values).ewm(alpha=alpha, adjust=True).mean().to_numpy(copy=True)
        )
        return smooth
    from scipy.signal import lfilter  # non-finite input: NaN/inf propagate as they always did

    raw = lfilter([alpha], [1.0, -beta], values)
    norm = 1.0 - beta ** np.arange(1, values.size + 1)
    out: np.ndarray = raw / norm
    return out


def rolling_median(values: np.ndarray, width: int) -> np.ndarray:
    """Centered rolling median (robust to single-batch outliers)."""
    values = np.asarray(values, dtype=float)
    if values.size < width or width <= 1:
        return values.copy()
    half = width // 2
    padded = np.pad(values, (half, width - 1 - half), mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, width)
    out: np.ndarray = np.median(windows, axis=1)
    return out


def noise(values: np.ndarray, span: float) -> tuple[np.ndarray, np.ndarray]:
    """``(trend, residual)``: a centered smooth trend and the values' deviation from it.

    The trend is the mean of a forward and a backward EMA, so it does not lag.
    """
    values = np.ascontiguousarray(values, dtype=float)
    fwd = ema(values, span)
    bwd = ema(np.ascontiguousarray(values[::-1]), span)[::-1]
    smooth = 0.5 * (fwd + bwd)
    return smooth, values - smooth


def warmup_end(lr: np.ndarray, tol: float = 0.02) -> int:
    """Index where a learning-rate warm-up ends: the first step at ≥ (1 - tol) × the peak lr."""
    lr = np.asarray(lr, dtype=float)
    if lr.size == 0 or not np.isfinite(lr).any():
        return 0
    peak = np.nanmax(lr)
    if peak <= 0:
        return 0
    reached = np.flatnonzero(lr >= (1.0 - tol) * peak)
    return int(reached[0]) if reached.size else 0


def lr_after_warmup(lr: np.ndarray) -> np.ndarray:
    """The learning-rate history from the end of warm-up on."""
    return np.asarray(lr, dtype=float)[warmup_end(lr) :]


def decays(lr: np.ndarray, rel: float = 0.05) -> bool:
    """Whether the learning rate ever drops more than ``rel`` below its post-warm-up peak."""
    after = finite(lr_after_warmup(lr))
    if after.size == 0:
        return False
    peak = float(after.max())
    return bool(peak > 0 and after.min() < (1.0 - rel) * peak)


#: Fewer logged points than this say too little about a curve's shape or noise to judge it.
MIN_CURVE_POINTS = 50

#: Fewer points than this are too few for any judgement of a curve's trend.
MIN_FEW_POINTS = 8

#: The first 20 % of a curve (after warm-up) is its fast initial fall: how much the loss bounces
#: around its trend is judged from there on.
JUDGED_FROM = 0.2


@dataclass(frozen=True)
class Curve:
    """A loss curve prepared for judging: finite values after warm-up, with its smooth trend.

    ``steps``/``values`` are the raw finite points; ``smooth`` a centered EMA over ``span``
    points; ``start`` the index where warm-up ends (0 without warm-up).
    """

    steps: np.ndarray
    values: np.ndarray
    smooth: np.ndarray
    residual: np.ndarray
    span: float
    initial: float  # median of the first few finite values of the whole run (warm-up included)

    @property
    def first(self) -> float:
        return float(self.smooth[0])

    @property
    def last(self) -> float:
        return float(self.smooth[-1])

    @property
    def bounds(self) -> tuple[int, int]:
        """The first and the last step of the curve."""
        return int(self.steps[0]), int(self.steps[-1])

    def level(self, at: float, width: float = 0.05) -> float:
        """Median of the raw values in a window of ``width`` (fraction) around fraction ``at``.

        At the ends the window lies inside the curve (the first or last ``width``), which is
        less biased than an EMA there.
        """
        n = len(self.values)
        half = max(1, round(width * n / 2))
        center = round(at * (n - 1))
        a = min(max(0, center - half), max(0, n - 2 * half))
        return float(np.median(self.values[a : a + 2 * half]))

    def relative_drop(self) -> float:
        """(start − end) / start, from the medians of the first and last 5 % of the curve.

        1 means the loss fell to zero, 0 no progress, negative that it rose.
        """
        start, end = self.level(0.0), self.level(1.0)
        return (start - end) / start if start > 0 else float("nan")

    def judged(self) -> int:
        """Index of the first point noise is judged from (``JUDGED_FROM`` of the curve)."""
        return int(JUDGED_FROM * len(self.values))

    def relative_noise(self, start: float | None = None, floor: float = 0.1) -> float:
        """Mean absolute deviation of the loss from its trend, relative to the trend.

        Measured from fraction ``start`` of the curve on (default ``JUDGED_FROM``). The mean
        (not a median) keeps the heavy tail of small-batch losses (most batches near zero, a
        few large) in the measure. The trend is floored at ``floor`` × the run's initial loss
        so that a loss near zero does not make tiny absolute wiggles look large. NaN for a
        curve that goes negative (such a loss has no relative scale).
        """
        if float(np.min(self.values)) < 0:
            return float("nan")
        a = self.judged() if start is None else int(start * len(self.values))
        level = np.maximum(self.smooth[a:], floor * max(self.initial, self.first, 1e-12))
        return float(np.mean(np.abs(self.residual[a:]) / level))


def prepare(
    run: Run, column: str = "loss", *, skip_warmup: bool = True, points: float = 20
) -> Curve | None:
    """The finite part of ``run.steps[column]`` after any lr warm-up, smoothed over 1/``points``.

    Several rules judge the same curve: it is built once per run (``Run.memo``).
    """
    return run.memo(
        ("curve", column, skip_warmup, points),
        lambda: _prepare(run.steps, column, skip_warmup=skip_warmup, points=points),
    )


def prepare_falling(run: Run, min_points: int) -> Curve | None:
    """``prepare(run)`` when it has ``min_points`` points or more and starts above zero.

    A fall is then measurable as a fraction of the start; otherwise None.
    """
    curve = prepare(run)
    if curve is None or len(curve.values) < min_points or curve.first <= 0:
        return None
    return curve


def _prepare(frame: pd.DataFrame, column: str, *, skip_warmup: bool, points: float) -> Curve | None:
    steps, values = series(frame, column)
    initial = float(np.median(values[:5])) if values.size else float("nan")
    if skip_warmup and "lr" in frame.columns:
        lr = _floats(frame["lr"])
        end = warmup_end(lr)
        if end > 0:
            first_step = frame.index.to_numpy()[end]
            keep = steps >= first_step
            steps, values = steps[keep], values[keep]
    if values.size < 10:
        return None
    span = max(5.0, values.size / points)
    smooth, residual = noise(values, span)
    for array in (steps, values, smooth, residual):
        array.flags.writeable = False  # shared between rules through Run.memo
    return Curve(steps, values, smooth, residual, span, initial)


@dataclass(frozen=True)
class Levels:
    """Where a short curve starts and ends, robust to single odd points: the medians of its
    first quarter and of its last third, and how much single points scatter (for curves of
    ``MIN_FEW_POINTS`` to ``MIN_CURVE_POINTS`` points, too few for an EMA trend)."""

    start: float
    end: float
    scatter: float  # robust std of one point's noise (from its steps to the next point)
    head: int  # points in the start's median
    tail: int  # points in the end's median
    steps: tuple[int, int]
    points: int
    first: float = float("nan")  # the first point
    rest_max: float = float("nan")  # the highest point after it
    rest_median: float = float("nan")  # the median of the points after it

    def fall(self) -> float:
        """The fall from the start to the end, as a fraction of the start."""
        return (self.start - self.end) / self.start if self.start > 0 else float("nan")

    def falls(self, min_drop: float) -> bool:
        """Whether the curve fell by at least ``min_drop`` of its start, by more than the
        scatter of its points explains (twice the standard error of the two medians)."""
        error = 1.253 * self.scatter * float(np.sqrt(1 / self.head + 1 / self.tail))
        if self.fall() >= min_drop and self.start - self.end > 2 * error:
            return True
        return self.fell_at_once(min_drop)

    def fell_at_once(self, min_drop: float) -> bool:
        """Whether the curve fell from its first point before the start's median was taken:
        every later point is below the first, and their median by ``min_drop`` of it. Were the
        points noise around a flat level, the first would be the highest with chance 1/points
        (under 13 % from MIN_FEW_POINTS on, under 4 % from 28)."""
        return self.first > self.rest_max and self.rest_median <= (1 - min_drop) * self.first


def levels(frame: pd.DataFrame, column: str = "loss") -> Levels | None:
    """The ``Levels`` of ``frame[column]``'s finite values (``steps`` are the frame's index), or
    None below MIN_FEW_POINTS."""
    steps, values = series(frame, column)
    n = values.size
    if n < MIN_FEW_POINTS:
        return None
    head, tail = max(2, n // 4), max(2, n // 3)
    jumps = np.diff(values)  # independent noise: the jumps scatter √2 times as much
    scatter = float(1.4826 * np.median(np.abs(jumps - np.median(jumps))) / np.sqrt(2))
    return Levels(
        float(np.median(values[:head])),
        float(np.median(values[-tail:])),
        scatter,
        head,
        tail,
        (int(steps[0]), int(steps[-1])),
        n,
        float(values[0]),
        float(np.max(values[1:])),
        float(np.median(values[1:])),
    )
