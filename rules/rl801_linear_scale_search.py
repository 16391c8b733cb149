"""RL801 linear-scale-search."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass

from runlint.check import Finding, NotJudged, Severity, option
from runlint.sweep import Search, SweepRule
from runlint.sweep.judge import fmt, pct, sampled
from runlint.sweep.space import scale_fit


class LinearScaleSearch(SweepRule):
    """A learning rate or regularization strength sampled on a linear scale over decades.

    For each positive numeric hyperparameter whose range spans at least ``min_decades``
    decades (the declared range, else the sampled one) and whose name the seed says to search
    on a log scale (``log_names``: learning rate, weight decay, L2, ...; a sampled range,
    where the tool declared none, from ``min_decades_sampled``: uniform sampling never reaches
    the low decades) — or whose declared range spans ``any_decades`` whatever its name — the
    rule
    compares how the sampled values fill the range with a uniform and with a log-uniform
    density: log-likelihoods, a Kolmogorov-Smirnov
    test against each (``p_fit``, ``p_reject``), the share of values in the top decade and the
    decades that hold no value. It fires when the values fit the uniform density and reject
    the log-uniform one; a range the tool declares linear (Optuna's ``log=False``) fires when
    the values do not favour a log-uniform density. Every trial's value counts, whatever its
    outcome, and at least ``min_trials`` of them.

    ## Why it matters
    A learning rate or a regularization strength acts by multiplication: 1e-5 and 1e-4 differ
    as much as 1e-2 and 1e-1. Sampled uniformly over [1e-6, 1e-1], 90% of the trials land in
    the top decade and the four decades below share the other 10%, so most of the range is
    never tried and the search may conclude on the wrong decade.

    ## Known problems
    A search deliberately confined to one decade is linear by design and is not judged (it
    spans less than ``min_decades``). A hyperparameter of another name whose range the tool
    did not declare is not judged: uniform draws from [0, high] (dropout, as the seed says)
    now and then land decades below the rest. A hand-picked list of values (a categorical choice) is
    not judged here (RL804 looks at grids). With fewer than ``min_trials`` values no test is
    conclusive.

    ## Fix
    Sample the hyperparameter log-uniformly: ``10 ** uniform(log10(low), log10(high))``
    (Optuna ``suggest_float(name, low, high, log=True)``, Ray Tune ``tune.loguniform``).

    ## Seed
    "在对数尺度上搜索超参数。学习率经典取样:learning_rate = 10 ** uniform(-6, 1)。对正则强度也采取
    同样策略取样。dropout 的搜索不用10做底数。"
    """

    code = "RL801"
    name = "linear-scale-search"
    severity = Severity.WARNING
    requires = ("trials", "space.numeric")

    @dataclass
    class Options:
        log_names: str = option(
            r"(^|[._/])(lr|learning_rate|learningrate|weight_decay|wd|l1|l2|l2_reg|reg|"
            r"reg_strength|regularization|lambda|lam|penalty|eps|epsilon)([._/]|$)",
            "a regular expression (case-insensitive) of the names the seed says to search on a "
            "log scale",
        )
        min_decades: float = option(2.0, "decades a named hyperparameter's range must span")
        min_decades_sampled: float = option(
            1.25,
            "decades a named hyperparameter's sampled range (none declared) must span: uniform "
            "sampling from [0, high] leaves its lowest value near high / trials",
        )
        any_decades: float = option(3.0, "decades that make any positive hyperparameter judged")
        min_trials: int = option(8, "fewer sampled values are not judged")
        p_fit: float = option(0.05, "KS p-value above which the values fit a uniform density")
        p_reject: float = option(0.01, "KS p-value below which they reject a log-uniform one")

    options: Options

    def check(self, search: Search) -> Iterator[Finding]:
        o = self.options
        pattern = re.compile(o.log_names, re.I)
        judged, short = 0, []
        for dim in search.numeric_dims():
            if dim.kind == "categorical" or (dim.declared and dim.log):
                continue
            values = sampled(search, dim.name)
            positive = [v for v in values if v > 0]
            if not positive or dim.high is None or dim.high <= 0:
                continue
            low = dim.low if dim.low is not None and dim.low > 0 else min(positive)
            high = dim.high
            if high <= low:
                continue
            decades = math.log10(high / low)
            if pattern.search(dim.name):
                floor = o.min_decades if dim.declared else o.min_decades_sampled
            elif dim.declared:
                floor = o.any_decades
            else:  # unnamed and undeclared: uniform draws from [0, high] reach any decade
                continue
            if decades < floor:
                continue
            if len(positive) < o.min_trials:
                short.append(f"{dim.name}: {len(positive)} sampled values (< {o.min_trials})")
                continue
            fit = scale_fit(positive, low, high)
            if fit is None:
                continue
            judged += 1
            declared_linear = dim.declared and dim.log is False
            if declared_linear:
                if fit.prefers_log:
                    continue
            elif not (fit.ks_linear >= o.p_fit and fit.ks_log < o.p_reject and not fit.prefers_log):
                continue
            empty = fit.bins - fit.covered
            said = "; the study declares it with log=False" if declared_linear else ""
            if not dim.declared:
                said = f" (the sampled range: no trial below {fmt(low)})"
            lo10, hi10 = math.floor(math.log10(low) + 1e-9), math.ceil(math.log10(high) - 1e-9)
            yield self.finding(
                search,
                f"{dim.name} was sampled on a linear scale over [{fmt(low)}, {fmt(high)}] "
                f"({decades:.1f} decades): {pct(fit.top_decade)} of its {fit.n} values lie in "
                f"the top decade [{fmt(high / 10)}, {fmt(high)}], where log-uniform sampling "
                f"puts {pct(fit.expected_top)}; {empty} of the range's {fit.bins} decades hold "
                f"no trial. The values fit a uniform density (KS p={fit.ks_linear:.2f}) and "
                f"not a log-uniform one (KS p={fit.ks_log:.1g}){said}",
                f"sample {dim.name} log-uniformly: 10 ** uniform({lo10}, {hi10}) (Optuna: "
                f"suggest_float({dim.name!r}, {fmt(low)}, {fmt(high)}, log=True); Ray Tune: "
                f"tune.loguniform({fmt(low)}, {fmt(high)}))",
                where=dim.name,
                evidence={
                    "low": low,
                    "high": high,
                    "span_decades": decades,
                    "n": fit.n,
                    "top_decade_share": fit.top_decade,
                    "expected_top_decade_share": fit.expected_top,
                    "decades_covered": fit.covered,
                    "decades": fit.bins,
                    "ks_p_uniform": fit.ks_linear,
                    "ks_p_log_uniform": fit.ks_log,
                    "loglik_uniform": fit.loglik_linear,
                    "loglik_log_uniform": fit.loglik_log,
                    "declared": dim.declared,
                },
            )
        if not judged and short:
            raise NotJudged("; ".join(short))
