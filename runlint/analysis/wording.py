"""How findings write numbers and lists of names."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

__all__ = ["fmt", "names"]


def fmt(value: float) -> str:
    """A number for a message: 3 significant digits, scientific outside [1e-3, 1e4)."""
    if not np.isfinite(value):
        return str(value)
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e4):
        return f"{value:.1e}"
    return f"{value:.3g}"


def names(items: Iterable[str], limit: int = 3) -> str:
    """``a, b, c and 4 more``."""
    items = list(items)
    shown = ", ".join(items[:limit])
    return shown if len(items) <= limit else f"{shown} and {len(items) - limit} more"
