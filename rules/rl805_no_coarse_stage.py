"""RL805 no-coarse-stage."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from runlint.analysis.wording import names
from runlint.check import Finding, Severity, option
from runlint.sweep import Search, SweepRule, Trial
from runlint.sweep.judge import fmt, pct


class NoCoarseStage(SweepRule):
    """Every trial trained the full budget, even those whose failure showed in the first epoch.

    The budget is the most epochs a trial trained; a trial trained long when it reached
    ``full`` of it. When at least ``share_long`` of the trials trained long (no pruner, no
    scheduler, no short first stage) and the budget exceeds ``min_budget`` epochs, the rule
    looks at each long trial's first ``coarse_epochs`` epochs: a non-finite objective or
    training loss, an objective ``explode``× worse than the median trial's after the same
    epochs (a minimized loss), or an objective that never improves by more than ``flat`` of
    its first-epoch value afterwards while ending worse than the median trial, is a failure a
    one-epoch coarse stage would have caught. The epochs those trials trained after it are
    wasted; the rule fires when they are at least ``min_wasted`` of all epochs trained.

    ## Why it matters
    Many wrong settings show at once: the loss explodes or nothing is learnt. Training every
    trial to the end spends the budget of the whole search on trials whose fate was known
    after one epoch, where a coarse stage would have spent it on more trials or longer good
    ones.

    ## Known problems
    A trial that fails late (a loss that diverges at epoch 10) is not counted: only failures
    visible in the first epochs are. A flat objective may be a hard task where every trial
    learns slowly: the rule counts a flat trial only when it also ends worse than the median.

    ## Fix
    Stage the search: train every trial for about one epoch first and drop those that do not
    learn or explode (``optuna.pruners.MedianPruner`` or ``SuccessiveHalvingPruner``, Ray
    Tune's ``ASHAScheduler``), then about five epochs on a narrower range, then long runs on
    the final range.

    ## Seed
    "在第一个 epoch 内进行初始的粗粒度搜索,因为很多不正确的超参数设置会导致模型不学习,
    或loss爆炸。第二阶段可以用 5 个 epoch 进行小范围搜索。第三阶段用更多 epoch,
    在最终确定的小范围内进行详细搜索。"
    """

    code = "RL805"
    name = "no-coarse-stage"
    severity = Severity.WARNING
    requires = ("curves", "epochs")

    @dataclass
    class Options:
        coarse_epochs: int = option(1, "epochs of the coarse stage that would have judged a trial")
        min_budget: int = option(
            3, "a search whose trials trained at most this many epochs is a coarse stage"
        )
        full: float = option(0.9, "a trial that trained this share of the budget trained long")
        share_long: float = option(0.9, "share of the trials that trained long")
        explode: float = option(3.0, "×the median first-epoch loss that counts as exploded")
        flat: float = option(
            0.01, "relative improvement after the first epoch below which a trial is flat"
        )
        min_wasted: float = option(0.05, "share of all epochs wasted that is reported")

    options: Options

    def check(self, search: Search) -> Iterator[Finding]:
        o = self.options
        trials = [t for t in search.trials if t.epochs]
        if not trials:
            return
        budget = max(t.epochs or 0 for t in trials)
        if budget <= o.min_budget:
            return
        long = [t for t in trials if (t.epochs or 0) >= o.full * budget]
        if len(long) < o.share_long * len(trials):
            return
        k = o.coarse_epochs
        minimize = search.objective.minimize
        first = [
            t.curve[k - 1] for t in trials if len(t.curve) >= k and math.isfinite(t.curve[k - 1])
        ]
        finals = [t.value for t in trials if t.value is not None and t.finite]
        median_first = float(np.median(first)) if first else math.nan
        median_final = float(np.median(finals)) if finals else math.nan
        caught: list[tuple[Trial, str]] = []
        for t in long:
            why = self._failure(t, k, minimize, median_first, median_final)
            if why:
                caught.append((t, why))
        if not caught:
            return
        wasted = sum(max(0, (t.epochs or 0) - k) for t, _ in caught)
        total = sum(t.epochs or 0 for t in trials)
        if total <= 0 or wasted < o.min_wasted * total:
            return
        kinds: dict[str, int] = {}
        for _, why in caught:
            kinds[why] = kinds.get(why, 0) + 1
        how = ", ".join(f"{n} {why}" for why, n in kinds.items())
        metric = search.objective.name
        yield self.finding(
            search,
            f"every trial trained long ({len(long)} of {len(trials)} trained ≥ "
            f"{math.ceil(o.full * budget)} of {budget} epochs; none was stopped early), "
            f"including {len(caught)} whose failure showed in the first "
            f"{'epoch' if k == 1 else f'{k} epochs'} ({how}; median first-epoch {metric} "
            f"{fmt(median_first)}): {wasted} of {total} epochs ({pct(wasted / total)}) went to "
            f"trials a {k}-epoch coarse stage would have dropped "
            f"({names([t.label for t, _ in caught], 5)})",
            evidence={
                "budget": budget,
                "trials_long": len(long),
                "caught": [{"trial": t.id, "why": why, "epochs": t.epochs} for t, why in caught],
                "epochs_wasted": wasted,
                "epochs_total": total,
            },
        )

    def _failure(
        self, t: Trial, k: int, minimize: bool, median_first: float, median_final: float
    ) -> str:
        o = self.options
        early = [*t.curve[:k], *t.train_loss[:k]]
        if any(not math.isfinite(v) for v in early) or (len(t.curve) >= k and not t.finite):
            if len(t.curve) >= k and not all(math.isfinite(v) for v in t.curve[:k]):
                return "with a non-finite objective"
            if any(not math.isfinite(v) for v in t.train_loss[:k]):
                return "with a non-finite training loss"
        if len(t.curve) < k or not math.isfinite(t.curve[k - 1]):
            return ""
        v1 = t.curve[k - 1]
        if minimize and median_first > 0 and v1 > o.explode * median_first:
            return f"exploded (>{fmt(o.explode)}× the median)"
        later = [v for v in t.curve[k:] if math.isfinite(v)]
        if later and math.isfinite(median_final) and t.value is not None:
            best_later = min(later) if minimize else max(later)
            gain = (v1 - best_later) if minimize else (best_later - v1)
            worse = t.value > median_final if minimize else t.value < median_final
            if gain <= o.flat * abs(v1) and worse:
                return "flat (no learning after it)"
        return ""
