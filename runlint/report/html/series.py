"""Curves made small for the page: min/max per pixel bucket, then quantized to 16-bit integers.

A plot is about ``BUCKETS`` pixels wide, so a 10,000-step loss is drawn from two points per
bucket, the bucket's minimum and maximum in the order they occur (the M4 idea): every spike
stays on the plot, the noise band keeps its width, and the page holds about 1,600 points
instead of 10,000. Values are then sent as integers ``0..QMAX`` over the series' own range
(``o + q × s``; log10 for log axes), a step far below a pixel, with ``MISSING`` for a missing or
non-finite value, packed as little-endian uint16 in base64 (2.7 characters a value). Steps are
sent as differences. ``report.js`` decodes both.
"""

from __future__ import annotations

import base64
from typing import Any

import numpy as np

__all__ = [
    "BUCKETS",
    "MISSING",
    "QMAX",
    "bucket_minmax",
    "deltas",
    "drop_flat",
    "ema",
    "quantize",
    "smooth",
]

BUCKETS = 800  # about a plot's width in pixels
QMAX = 65534  # 1/65,534 of the range: far below a pixel, and hover values keep 4-5 digits
MISSING = 65535


def bucket_minmax(
    x: np.ndarray, ys: np.ndarray, buckets: int = BUCKETS
) -> tuple[np.ndarray, np.ndarray]:
    """``x`` (n,) and ``ys`` (n, k) reduced to two points per bucket of ``n / buckets`` rows.

    Each bucket keeps, for every column, its minimum and its maximum in the order they occur;
    the two points sit at the bucket's first and last ``x`` (one pixel apart at most). A bucket
    with some non-finite values keeps its extreme and a gap (NaN), so a divergence still
    breaks the line where it happened. Short series come back unchanged.
    """
    x = np.asarray(x)
    ys = np.asarray(ys, dtype=float)
    if ys.ndim == 1:
        ys = ys[:, None]
    n = x.shape[0]
    if n <= 2 * buckets:
        return x, ys
    starts = np.linspace(0, n, buckets + 1).astype(np.int64)[:-1]
    ends = np.append(starts[1:], n) - 1
    finite = np.isfinite(ys)
    lo = np.where(finite, ys, np.inf)
    hi = np.where(finite, ys, -np.inf)
    mins = np.minimum.reduceat(lo, starts, axis=0)
    maxs = np.maximum.reduceat(hi, starts, axis=0)
    # where each extreme occurs: the first row of the bucket equal to it
    bucket = np.repeat(np.arange(buckets), np.diff(np.append(starts, n)))
    rows = np.arange(n)[:, None]
    big = np.int64(n + 1)
    arg_min = np.minimum.reduceat(np.where(lo == mins[bucket], rows, big), starts, axis=0)
    arg_max = np.minimum.reduceat(np.where(hi == maxs[bucket], rows, big), starts, axis=0)
    min_first = arg_min <= arg_max
    first = np.where(min_first, mins, maxs)
    second = np.where(min_first, maxs, mins)
    all_bad = ~np.isfinite(mins)  # no finite value in the bucket
    some_bad = np.logical_or.reduceat(~finite, starts, axis=0) & ~all_bad
    first = np.where(all_bad, np.nan, np.where(some_bad, maxs, first))
    second = np.where(all_bad | some_bad, np.nan, second)
    out_x = np.empty(2 * buckets, dtype=x.dtype)
    out_x[0::2], out_x[1::2] = x[starts], x[ends]
    out = np.empty((2 * buckets, ys.shape[1]))
    out[0::2], out[1::2] = first, second
    same = starts == ends  # a one-row bucket: one point, not two at the same x
    if same.any():
        keep = np.ones(2 * buckets, dtype=bool)
        keep[1::2] = ~same
        out_x, out = out_x[keep], out[keep]
    return out_x, out


def drop_flat(x: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows inside a run of equal rows left out: a step schedule keeps only its corners."""
    n = x.shape[0]
    if n < 3:
        return x, ys
    same = np.all((ys[1:] == ys[:-1]) | (np.isnan(ys[1:]) & np.isnan(ys[:-1])), axis=1)
    keep = np.ones(n, dtype=bool)
    keep[1:-1] = ~(same[:-1] & same[1:])  # equal to both neighbours
    return x[keep], ys[keep]


def smooth(values: np.ndarray, alpha: float | None = None) -> np.ndarray:
    """``ema`` run forwards, then backwards: the same smoothing without the EMA's lag (a
    falling loss is not drawn above its raw points), for display."""
    forward = ema(values, alpha)
    return ema(forward[::-1], alpha)[::-1].copy()


def ema(values: np.ndarray, alpha: float | None = None) -> np.ndarray:
    """An exponential moving average over the finite values (NaN stays NaN).

    ``alpha`` defaults to what ``runlint check``'s sparkline uses: about 20 / n, in
    [0.01, 0.3].
    """
    values = np.asarray(values, dtype=float)
    n = values.size
    if n == 0:
        return values.copy()
    if alpha is None:
        alpha = max(0.01, min(0.3, 20.0 / n))
    finite = np.isfinite(values)
    out = np.full(n, np.nan)
    if not finite.any():
        return out
    # pandas' ewm ignores NaNs and is vectorized; a Python loop over 10k steps is too slow
    import pandas as pd

    smooth = pd.Series(np.where(finite, values, np.nan)).ewm(alpha=alpha, adjust=False)
    out = smooth.mean().to_numpy(dtype=float, copy=True)
    out[~finite] = np.nan
    return out


def quantize(values: Any, log: bool = False, qmax: int = QMAX) -> dict[str, Any] | None:
    """``{"o", "s", "b"[, "l"]}``: ``values ≈ o + q × s`` (``10 ** (...)`` when ``l``), the
    ``q`` as little-endian uint16 in base64 (``b``).

    ``q`` is ``MISSING`` for NaN/±inf (and for values ≤ 0 on a log axis). ``None`` when no
    value is usable.
    """
    v = np.asarray(values, dtype=float)
    if log:
        with np.errstate(divide="ignore", invalid="ignore"):
            v = np.where(v > 0, np.log10(np.where(v > 0, v, 1.0)), np.nan)
    ok = np.isfinite(v)
    if not ok.any():
        return None
    lo, hi = float(v[ok].min()), float(v[ok].max())
    scale = (hi - lo) / qmax if hi > lo else 1.0
    scale = float(f"{scale:.6g}")
    lo = _short(lo)
    q = np.full(v.shape, MISSING, dtype="<u2")
    q[ok] = np.clip(np.rint((v[ok] - lo) / scale), 0, qmax).astype("<u2")
    out: dict[str, Any] = {"o": lo, "s": scale, "b": base64.b64encode(q.tobytes()).decode()}
    if log:
        out["l"] = 1
    return out


def deltas(steps: Any) -> list[int]:
    """Integer steps as ``[first, d1, d2, ...]`` (the page adds them up)."""
    s = np.asarray(steps, dtype=np.int64)
    if s.size == 0:
        return []
    return np.concatenate([s[:1], np.diff(s)]).tolist()


def _short(value: float) -> float:
    """``value`` rounded where it does not move a quantized point (saves bytes)."""
    return float(f"{value:.7g}")
