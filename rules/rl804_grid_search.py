"""RL804 grid-search."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

from runlint.check import Finding, Severity, option
from runlint.sweep import Search, SweepRule
from runlint.sweep.judge import is_number


class GridSearch(SweepRule):
    """The trials form a grid, where random search would try many more values of each.

    Among the numeric searched hyperparameters, each one that takes at most ``max_levels``
    of the trials' count as distinct values is gridded. When every numeric hyperparameter is
    gridded, at least two are, one of them takes non-integer values, and the trials cover at
    least ``coverage`` of the grid's combinations, the search is a grid: the message gives the
    levels of each and what random search would have tried with the same trials. At least
    ``min_trials`` trials.

    ## Why it matters
    Some hyperparameters matter much more than others. A grid of n trials over d
    hyperparameters tries only n^(1/d) values of each, so the important one is tried at a
    few values however many trials run; random search with the same n trials tries n values
    of every hyperparameter and finds the good region of the important one more precisely.

    ## Known problems
    A deliberate sweep over a few discrete settings (batch sizes, layer counts) crossed with
    a second one is a grid by design; integer-valued hyperparameters alone never make one
    here. A random search over hand-picked lists of values is reported as a grid when it
    happens to cover their combinations.

    ## Fix
    Sample every hyperparameter at random instead of from a grid (log-uniformly for the
    learning rate and the regularization): the same number of trials then tries as many values
    of each hyperparameter as there are trials.

    ## Seed
    "Prefer random search to grid search. 随机搜索比网格搜索更高效……
    通常情况下,某些超参数就是比其他好,随机搜索可以更精确的发现重要超参数。"
    """

    code = "RL804"
    name = "grid-search"
    severity = Severity.WARNING
    requires = ("trials", "space.numeric")

    @dataclass
    class Options:
        max_levels: float = option(
            1 / 3, "share of the trials' count a gridded dimension's levels stay within"
        )
        coverage: float = option(0.8, "share of the grid's combinations the trials must cover")
        min_trials: int = option(8, "fewer trials are not judged")

    options: Options

    def check(self, search: Search) -> Iterator[Finding]:
        o = self.options
        trials = search.trials
        n = len(trials)
        if n < o.min_trials:
            return
        dims = [d for d in search.numeric_dims()]
        if len(dims) < 2:
            return
        levels: dict[str, list[float]] = {}
        for dim in dims:
            values = [
                float(t.params[dim.name]) for t in trials if is_number(t.params.get(dim.name))
            ]
            distinct = sorted(set(values))
            if len(distinct) > o.max_levels * n or len(distinct) < 2:
                return
            levels[dim.name] = distinct
        if all(all(v.is_integer() for v in vals) for vals in levels.values()):
            return
        grid = math.prod(len(v) for v in levels.values())
        combos = {
            tuple(float(t.params[name]) for name in levels)
            for t in trials
            if all(is_number(t.params.get(name)) for name in levels)
        }
        if len(combos) < o.coverage * grid:
            return
        shape = "×".join(str(len(v)) for v in levels.values())
        each = ", ".join(f"{name}: {len(v)} values" for name, v in levels.items())
        yield self.finding(
            search,
            f"the {n} trials form a {shape} grid ({each}; {len(combos)} of the {grid} "
            f"combinations tried): each hyperparameter was tried at only "
            f"{min(len(v) for v in levels.values())}–{max(len(v) for v in levels.values())} "
            f"values, where {n} random trials would try {n} values of each",
            evidence={
                "levels": {name: v for name, v in levels.items()},
                "grid": grid,
                "combinations": len(combos),
                "trials": n,
            },
        )
