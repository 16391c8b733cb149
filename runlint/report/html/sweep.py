"""``runlint sweep --format html``: one self-contained page of a hyperparameter search.

The seed's sweep plots, drawn by the vendored uPlot like the run report: the objective against
each searched hyperparameter on its searched scale (a log axis where the search was
log-uniform), the searched range's ends and its border (``RL802``'s ``edge`` at each end)
shaded, the best trial marked, one colour per stage; the objective of every trial in the order
they ran, with the best so far; and the objective per epoch of every trial (the coarse stage a
search has, or lacks). Findings sit beside the plot of the hyperparameter they name; a table
lists every trial (sortable). The data is inlined JSON; the page needs no network.

    from runlint.report.html.sweep import render_sweep
    html = render_sweep(search, report)      # a linted search and its SweepReport
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

from runlint.check.rule import Finding
from runlint.report import Report
from runlint.report.html.page import _e, _json, _steps, asset
from runlint.sweep.judge import sampled
from runlint.sweep.model import Search, Trial
from runlint.sweep.space import uses_log

__all__ = ["plots", "render_sweep"]

#: The border drawn at each end of a range: RL802's default ``edge``.
EDGE = 0.1


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def plots(search: Search) -> dict[str, Any]:
    """The data of every plot: ``dims`` (one per numeric hyperparameter), ``time``, ``epochs``."""
    trials = search.trials
    stages = [s.name for s in search.stages] or [""]
    stage_of = {id(t): i for i, s in enumerate(search.stages) for t in s.trials}
    best = search.best
    dims = []
    for dim in search.numeric_dims():
        points = [
            (x, _num(t.value), stage_of.get(id(t), 0), t)
            for t in trials
            if (x := _num(t.params.get(dim.name))) is not None
        ]
        points.sort(key=lambda p: p[0])
        log = uses_log(dim, sampled(search, dim.name))
        if log and any(p[0] <= 0 for p in points):
            log = False
        xs = [p[0] for p in points]
        series: list[dict[str, Any]] = []
        for j, name in enumerate(stages):
            series.append(
                {
                    "label": name or "trials",
                    "y": [p[1] if p[2] == j else None for p in points],
                    "ids": [p[3].label if p[2] == j else None for p in points],
                }
            )
        series.append(
            {
                "label": "best",
                "y": [p[1] if best is not None and p[3] is best else None for p in points],
                "best": True,
            }
        )
        dims.append(
            {
                "name": dim.name,
                "x": xs,
                "log": log,
                "low": dim.low,
                "high": dim.high,
                "declared": dim.declared,
                "edge": EDGE,
                "series": series,
            }
        )
    timed = [t for t in trials if t.start is not None or t.end is not None]
    use_time = len(timed) == len(trials) and len(trials) > 1

    def when(t: Trial) -> float:
        return float(t.start if t.start is not None else t.end or 0.0) if use_time else t.number

    ordered = sorted(trials, key=lambda t: (when(t), t.number))
    so_far: list[float | None] = []
    best_value: float | None = None
    for t in ordered:
        v = _num(t.value)
        finished = v is not None and t.state in ("complete", "pruned")
        if finished and (best_value is None or _better(search, v, best_value)):
            best_value = v
        so_far.append(best_value)
    t0 = when(ordered[0]) if ordered and use_time else 0.0
    timeline = {
        "x": [(when(t) - t0) / 60.0 if use_time else float(t.number) for t in ordered],
        "unit": "minutes since the first trial" if use_time else "trial number",
        "y": [_num(t.value) for t in ordered],
        "best": so_far,
        "ids": [t.label for t in ordered],
    }
    longest = max((len(t.curve) for t in trials), default=0)
    per_epoch = {
        "x": list(range(1, longest + 1)),
        "series": [
            {
                "label": t.label,
                "y": [_num(v) for v in t.curve] + [None] * (longest - len(t.curve)),
                "best": best is not None and t is best,
            }
            for t in trials
            if t.curve
        ],
    }
    return {
        "objective": search.objective.name,
        "direction": search.objective.direction,
        "dims": dims,
        "time": timeline,
        "epochs": per_epoch if longest > 1 else None,
    }


def _better(search: Search, a: float | None, b: float) -> bool:
    return a is not None and (a < b if search.objective.minimize else a > b)


def _finding(f: Finding, k: int) -> str:
    where = f" · {_e(f.where)}" if f.where else ""
    steps = f" · steps {_steps(f)}" if f.steps is not None else ""
    return (
        f'<li id="f{k}" class="rl-finding sev-{f.severity.value}">'
        f'<span class="sev">{f.severity.value}</span> <b>{_e(f.code)}</b> {_e(f.name)}'
        f'<span class="span">{where}{steps}</span>'
        f'<div class="msg">{_e(f.message)}</div><div class="fix">fix: {_e(f.fix)}</div></li>'
    )


def render_sweep(search: Search | None, report: Report, title: str | None = None) -> str:
    """The HTML page of a linted search (``None``: only the report's errors)."""
    from runlint import __version__

    name = search.name if search is not None else "no search"
    title = title or f"runlint sweep: {name}"
    out: list[str] = []
    w = out.append
    w("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>")
    w("<meta name='viewport' content='width=device-width, initial-scale=1'>")
    w(f"<title>{_e(title)}</title>")
    w(f"<style>{asset('uPlot.min.css')}</style><style>{asset('report.css')}</style>")
    w("<style>.rl-sweep .card.has-finding{border-color:rgb(217,119,6)}</style>")
    w("</head><body class='rl-sweep'>")
    w(f"<header><h1>{_e(title)}</h1><p class='summary'>{_e(report.summary_line())}</p>")
    if search is not None:
        o = search.objective
        w(
            f"<p class='hint'>{_e(search.location)} · {len(search.trials)} trials · objective "
            f"{_e(o.name)} ({_e(o.direction)}, {_e(o.how)}) · drag to zoom, double-click to "
            "zoom out; the shaded bands are the border of each searched range.</p>"
        )
    w(
        f"<p class='generated'>runlint {_e(__version__)} · "
        f"{_e(time.strftime('%Y-%m-%d %H:%M'))}</p></header><main>"
    )
    findings = [f for r in report.results for f in r.findings]
    search_findings = (
        [f for f in findings if search is not None and f.run == search.location]
        if search is not None
        else []
    )
    index = {id(f): k for k, f in enumerate(findings)}
    w("<section id='findings'><h2>Findings</h2>")
    errors = [r for r in report.results if r.status == "error"]
    for r in errors:
        w(f"<p class='error'>{_e(r.error)}</p>")
    for p in report.problems:
        w(f"<p class='error'>{_e(p)}</p>")
    if findings:
        w("<ul class='rl-notes'>")
        for f in sorted(findings, key=lambda f: (-f.severity.rank, f.code)):
            w(_finding(f, index[id(f)]))
        w("</ul>")
    else:
        w("<p>No findings.</p>")
    w("</section>")
    if search is None:
        w("</main></body></html>\n")
        return "".join(out)

    data = plots(search)
    by_dim: dict[str, list[Finding]] = {}
    for f in search_findings:
        if f.where:
            by_dim.setdefault(f.where, []).append(f)
    w("<section id='plots'><h2>Objective against each hyperparameter</h2><div class='grid'>")
    for i, dim in enumerate(data["dims"]):
        marked = by_dim.get(dim["name"], [])
        cls = " has-finding" if marked else ""
        scale = "log scale" if dim["log"] else "linear scale"
        rng = f"[{dim['low']:.3g}, {dim['high']:.3g}]" if dim["low"] is not None else ""
        how = "declared" if dim["declared"] else "as sampled"
        heading = f"{_e(data['objective'])} vs {_e(dim['name'])}"
        w(f"<div class='card{cls}' id='dim-{i}'><h3>{heading}</h3>")
        w(
            f"<p class='about'>{scale}; range {_e(rng)} ({how}); the outer "
            f"{int(EDGE * 100)}% at each end shaded: the border</p>"
        )
        w(f"<div class='rl-plot rl-sweep-plot' data-plot='dim' data-index='{i}'></div>")
        if marked:
            w("<ul class='rl-notes'>")
            for f in marked:
                k = index[id(f)]
                w(
                    f"<li class='rl-finding rl-also sev-{f.severity.value}'><a href='#f{k}'>"
                    f"<b>{_e(f.code)}</b> {_e(f.name)}</a></li>"
                )
            w("</ul>")
        w("</div>")
    w("</div></section>")
    w("<section id='time'><h2>Trials over time</h2><div class='grid'>")
    w(
        f"<div class='card'><h3>{_e(data['objective'])} of each trial, in the order they ran</h3>"
        f"<p class='about'>x: {_e(data['time']['unit'])}; the line is the best so far</p>"
        "<div class='rl-plot rl-sweep-plot' data-plot='time'></div></div>"
    )
    if data["epochs"] is not None:
        w(
            f"<div class='card'><h3>{_e(data['objective'])} per epoch, every trial</h3>"
            "<p class='about'>trials that fail in their first epoch and train on show here "
            "(RL805)</p><div class='rl-plot rl-sweep-plot' data-plot='epochs'></div></div>"
        )
    w("</div></section>")
    _trials_table(w, search)
    w("</main>")
    w(f"<script type='application/json' id='rl-sweep'>{_json(data)}</script>")
    w(f"<script>{asset('uPlot.iife.min.js')}</script>")
    w(f"<script>{asset('sortable.js')}</script>")
    w(f"<script>{asset('sweep.js')}</script>")
    w("</body></html>\n")
    return "".join(out)


def _trials_table(w: Any, search: Search) -> None:
    names: Sequence[str] = list(search.space)
    best = search.best
    w("<section id='trials'><h2>Trials</h2>")
    w("<table class='rl-table sortable' id='trials-table'><thead><tr>")
    w("<th data-sort='num'>#</th><th>trial</th><th>state</th><th>stage</th>")
    w(f"<th data-sort='num'>{_e(search.objective.name)}</th><th data-sort='num'>epochs</th>")
    for n in names:
        w(f"<th data-sort='num'>{_e(n)}</th>")
    w("<th>run</th></tr></thead><tbody>")
    for t in sorted(search.trials, key=lambda t: t.number):
        mark = " class='best'" if t is best else ""
        value = _num(t.value)
        w(
            f"<tr{mark}><td data-v='{t.number}'>{t.number}</td><td>{_e(t.label)}"
            f"{' ★' if t is best else ''}</td><td>{_e(t.state)}</td><td>{_e(t.stage)}</td>"
            f"<td data-v='{'' if value is None else value}'>"
            f"{'' if value is None else f'{value:.4g}'}</td>"
            f"<td data-v='{t.epochs or ''}'>{t.epochs or ''}</td>"
        )
        for n in names:
            v = t.params.get(n)
            num = _num(v)
            shown = f"{num:.4g}" if num is not None else ("" if v is None else str(v))
            w(f"<td data-v='{'' if num is None else num}'>{_e(shown)}</td>")
        w(f"<td>{_e(t.run or '')}</td></tr>")
    w("</tbody></table></section>")
