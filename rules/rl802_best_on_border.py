"""RL802 best-on-border."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from runlint.check import Finding, NotJudged, Severity, option
from runlint.sweep import Search, SweepRule
from runlint.sweep.judge import fmt, pct, sampled, scale_of, trial_value, word_scale
from runlint.sweep.space import position


class BestOnBorder(SweepRule):
    """The best trial's value of a hyperparameter lies at the edge of the searched range.

    For each numeric searched hyperparameter, the best trial's value is placed in the range
    (the declared one, else the sampled one) on the range's scale (log where the search was
    log-uniform): within ``edge`` of either end is on the border. The rule fires when the
    objective also improves toward that end over all the trials (a one-sided Spearman rank
    test, p below ``p_trend``), so that a border value that is best by chance on a flat
    objective stays silent. It says how far inside the next-best trials are (the best
    ``top`` share, at least three): when at least half of them lie within ``near`` of the
    same end it is a warning, otherwise an info. At least ``min_trials`` trials with a result.

    ## Why it matters
    A best value on the edge of the searched range means the optimum may lie beyond it: the
    range was wrong, and the search never tried the values that would have done better. When
    the next-best trials crowd the same edge the evidence is strong.

    ## Known problems
    An end that cannot move is not a border: a lower end of 0 for a non-negative setting (no
    weight decay, no dropout is best) and an upper end of 1 for a probability are left out.
    An optimum just inside the range near an edge can still put the best trial on the border;
    the trend test keeps chance out, not physics.

    ## Fix
    Widen the range beyond the end the best trial sits at (a decade further on a log scale)
    and search again.

    ## Seed
    "Careful with best values on border. 有时超参数在一个不对的范围内搜索……最后记得检查下极值。"
    """

    code = "RL802"
    name = "best-on-border"
    severity = Severity.WARNING
    requires = ("trials", "space.numeric")
    explained_by = ("RL801",)  # a linear range samples its low decades too sparsely

    @dataclass
    class Options:
        edge: float = option(0.1, "the range's share at each end (on its scale) that is the border")
        near: float = option(
            0.25, "next-best trials within this share of the same end count as near"
        )
        top: float = option(0.2, "share of the trials (at least 3) that are the next-best")
        p_trend: float = option(0.05, "one-sided Spearman p-value of the trend toward the border")
        min_trials: int = option(10, "fewer trials with a result are not judged")

    options: Options

    def check(self, search: Search) -> Iterator[Finding]:
        from scipy import stats

        o = self.options
        ranked = search.ranked()
        if len(ranked) < o.min_trials:
            raise NotJudged(f"{len(ranked)} trials with a result (< {o.min_trials})")
        best = ranked[0]
        k = max(3, math.ceil(o.top * len(ranked)))
        nextbest = ranked[1 : k + 1]
        sign = 1.0 if search.objective.minimize else -1.0
        for dim in search.numeric_dims():
            value = best.params.get(dim.name)
            if not isinstance(value, int | float) or isinstance(value, bool):
                continue
            values = sampled(search, dim.name)
            if dim.low is None or dim.high is None or dim.high <= dim.low:
                continue
            log = scale_of(search, dim)
            p = position(float(value), dim, log)
            if p is None:
                continue
            side = "lower" if p <= o.edge else ("upper" if p >= 1 - o.edge else None)
            if side is None or self._fixed_end(dim.name, side, dim.low, dim.high, values):
                continue
            pairs = [
                (position(float(t.params[dim.name]), dim, log), sign * float(t.value or 0.0))
                for t in ranked
                if isinstance(t.params.get(dim.name), int | float)
            ]
            xs = np.array([q for q, _ in pairs if q is not None])
            ys = np.array([y for q, y in pairs if q is not None])
            if xs.size < o.min_trials or np.ptp(xs) == 0:
                continue
            toward = xs if side == "upper" else -xs
            rho, p_two = stats.spearmanr(toward, -ys)  # better (lower sign*value) toward the end
            rho = float(rho)
            p_one = float(p_two) / 2 if rho > 0 else 1.0 - float(p_two) / 2
            if not (rho > 0 and p_one < o.p_trend):
                continue
            near = [
                q
                for t in nextbest
                if (q := position(float(t.params.get(dim.name, math.nan)), dim, log)) is not None
                and (q >= 1 - o.near if side == "upper" else q <= o.near)
            ]
            inside = [
                q
                for t in nextbest
                if (q := position(float(t.params.get(dim.name, math.nan)), dim, log)) is not None
            ]
            dist = [(1 - q) if side == "upper" else q for q in inside]
            strong = len(near) * 2 >= len(inside) > 0
            end = dim.high if side == "upper" else dim.low
            from_end = (1 - p) if side == "upper" else p
            scale = word_scale(log)
            yield self.finding(
                search,
                f"the best trial {trial_value(search, best)} has {dim.name} = {fmt(float(value))}, "
                f"{pct(from_end)} of the range from its {side} end {fmt(end)} (range "
                f"[{fmt(dim.low)}, {fmt(dim.high)}], {scale}"
                f"{', as sampled' if not dim.declared else ''}); {len(near)} of the "
                f"{len(inside)} next-best trials lie within {pct(o.near)} of the same end "
                f"(median {pct(float(np.median(dist))) if dist else '?'} inside), and the "
                f"objective improves toward it (Spearman ρ={rho:.2f}, p={p_one:.2g})",
                self._fix(dim.name, side, dim.low, dim.high, log),
                severity=self.severity if strong else Severity.INFO,
                where=dim.name,
                evidence={
                    "trial": best.id,
                    "value": float(value),
                    "side": side,
                    "position": p,
                    "low": dim.low,
                    "high": dim.high,
                    "log": log,
                    "declared": dim.declared,
                    "next_best_positions": inside,
                    "next_best_near": len(near),
                    "spearman_rho": rho,
                    "spearman_p": p_one,
                },
            )

    @staticmethod
    def _fixed_end(name: str, side: str, low: float, high: float, values: list[float]) -> bool:
        """An end the range cannot move past: 0 for a non-negative setting, 1 for a
        probability (a dropout rate)."""
        if side == "lower" and low <= 0 and all(v >= 0 for v in values):
            return True
        probability = any(w in name.lower() for w in ("dropout", "prob", "drop_rate", "p_drop"))
        return side == "upper" and high >= 1 and probability and all(0 <= v <= 1 for v in values)

    @staticmethod
    def _fix(name: str, side: str, low: float, high: float, log: bool) -> str:
        if log and low > 0:
            new = (low / 10, high) if side == "lower" else (low, high * 10)
        else:
            width = high - low
            new = (low - width / 2, high) if side == "lower" else (low, high + width / 2)
            if side == "lower" and low >= 0:
                new = (max(0.0, new[0]), high)
        return (
            f"widen the range of {name} beyond its {side} end, e.g. to [{fmt(new[0])}, "
            f"{fmt(new[1])}], and search again"
        )
