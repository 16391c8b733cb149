"""RL807 narrowed-off-best."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from runlint.check import Finding, Severity, option
from runlint.sweep import Dimension, Search, SweepRule
from runlint.sweep.judge import fmt, is_number, pct, scale_of, trial_value, word_scale
from runlint.sweep.model import better
from runlint.sweep.space import position


class NarrowedOffBest(SweepRule):
    """A later stage narrowed a range around a value that was not the best one found.

    The stages of the search (its studies, the folders given on the command line, or the
    stage each trial names) are taken in the order they began. For each numeric
    hyperparameter, a stage whose range (declared, else sampled) is at most ``narrow`` of the
    range of the stages before it, on the hyperparameter's scale, narrowed it; the rule fires
    when the best trial of the earlier stages had a value outside the narrowed range (by more
    than ``slack`` of the new range's width).

    ## Why it matters
    Coarse-to-fine search narrows the range around the best result so far. Narrowed around
    another value, the fine stage spends its trials where the coarse stage already did worse,
    and cannot find the best value again.

    ## Known problems
    A stage may narrow on purpose around a value that is better on another objective (a
    faster or smaller model); the rule only knows the objective it judges. A noisy objective
    can make the coarse stage's best a lucky trial: compare the stages' best values in the
    message.

    ## Fix
    Narrow the range around the best value found so far (on a log scale, a factor of about
    three either side), and keep the earlier stage's best trial in view.

    ## Seed
    "搜索实践: 先在大概范围内搜索,然后根据最佳结果的取值,缩小搜索范围。"
    """

    code = "RL807"
    name = "narrowed-off-best"
    severity = Severity.WARNING
    requires = ("trials", "stages")

    @dataclass
    class Options:
        narrow: float = option(0.6, "a range at most this share of the earlier one's was narrowed")
        slack: float = option(0.1, "share of the new range's width the best may lie outside it")

    options: Options

    def check(self, search: Search) -> Iterator[Finding]:
        o = self.options
        objective = search.objective
        for k in range(1, len(search.stages)):
            stage = search.stages[k]
            before = [t for s in search.stages[:k] for t in s.trials]
            judged = [t for t in before if t.finite and t.state in ("complete", "pruned")]
            if not judged:
                continue
            best = judged[0]
            for t in judged[1:]:
                if better(objective, float(t.value or 0.0), float(best.value or 0.0)):
                    best = t
            for name, new in stage.space.items():
                dim = search.space.get(name)
                if dim is None or not dim.numeric or dim.kind == "categorical":
                    continue
                old_lows = [s.space[name].low for s in search.stages[:k] if name in s.space]
                old_highs = [s.space[name].high for s in search.stages[:k] if name in s.space]
                lows = [v for v in old_lows if v is not None]
                highs = [v for v in old_highs if v is not None]
                if not lows or not highs or new.low is None or new.high is None:
                    continue
                old = Dimension(name, dim.kind, min(lows), max(highs))
                log = scale_of(search, dim)
                lo_p, hi_p = position(new.low, old, log), position(new.high, old, log)
                if lo_p is None or hi_p is None:
                    continue
                share = hi_p - lo_p
                if share > o.narrow:
                    continue
                raw = best.params.get(name)
                if not is_number(raw):
                    continue
                value = float(raw)
                p = position(value, Dimension(name, dim.kind, new.low, new.high), log)
                if p is None or -o.slack <= p <= 1 + o.slack:
                    continue
                inside = [t for t in stage.trials if t.finite and is_number(t.params.get(name))]
                best_new = objective.best(float(t.value or 0.0) for t in inside)
                center = (
                    (new.low * new.high) ** 0.5 if log and new.low > 0 else (new.low + new.high) / 2
                )
                yield self.finding(
                    search,
                    f"stage {stage.name!r} narrowed {name} from [{fmt(old.low or 0.0)}, "
                    f"{fmt(old.high or 0.0)}] to [{fmt(new.low)}, {fmt(new.high)}] "
                    f"({pct(share)} of the range, {word_scale(log)}) around {fmt(center)}, but "
                    f"the best trial before it, {trial_value(search, best)}, had {name} = "
                    f"{fmt(value)}, outside the new range; the best trial of the "
                    f"narrowed stage scores {objective.name} {fmt(best_new)}",
                    f"narrow {name} around the best value so far ({fmt(value)}), e.g. "
                    + (
                        f"[{fmt(value / 3)}, {fmt(value * 3)}]"
                        if log
                        else f"±{fmt((new.high - new.low) / 2)} around it"
                    ),
                    where=name,
                    evidence={
                        "stage": stage.name,
                        "old_range": [old.low, old.high],
                        "new_range": [new.low, new.high],
                        "share": share,
                        "best_trial": best.id,
                        "best_value": value,
                        "best_objective": best.value,
                        "stage_best_objective": best_new,
                    },
                )
