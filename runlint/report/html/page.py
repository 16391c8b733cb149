"""The HTML page: static tables and plot cards (Python), data as JSON, uPlot and our script.

Everything is inlined (styles, uPlot, ``report.js``, the data), so the file opens from disk
with no network. Each run's data is its own ``<script type="application/json">``: the page
parses and draws a run when its section scrolls into view, so 50 runs open as fast as one.
"""

from __future__ import annotations

import html
import json
import time
from collections.abc import Sequence
from importlib import resources
from typing import Any

from runlint.check.engine import RunResult
from runlint.check.rule import Finding, Severity
from runlint.report import jsonable
from runlint.report.html.extract import RunPage

__all__ = ["asset", "render_page"]

SEVERITY_ORDER = {"error": 2, "warning": 1, "info": 0}


def asset(name: str) -> str:
    """A file of ``runlint/report/html/assets`` as text."""
    return (resources.files("runlint.report.html") / "assets" / name).read_text(encoding="utf-8")


def _e(text: Any) -> str:
    return html.escape("" if text is None else str(text), quote=True)


def _json(obj: Any) -> str:
    try:
        text = json.dumps(obj, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    except ValueError:  # a NaN somewhere in metadata: the slow, safe path
        text = json.dumps(jsonable(obj), separators=(",", ":"), ensure_ascii=False)
    return text.replace("<", "\\u003c")  # never closes the <script>


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e9:
            return str(int(value))
        return f"{value:.4g}"
    return str(value)


def _steps(f: Finding) -> str:
    if f.steps is None:
        return "whole run"
    a, b = f.steps
    return f"{a}" if a == b else f"{a}–{b}"


def _worst(findings: Sequence[Finding]) -> str:
    if not findings:
        return ""
    return max((f.severity for f in findings), key=lambda s: s.rank).value


def _finding_item(k: int, f: Finding, anchor: bool, home: str = "") -> str:
    """A finding beside its plot: in full on its first plot, a link to it on the others."""
    if not anchor:
        return (
            f'<li class="rl-finding rl-also sev-{f.severity.value}" data-finding="{k}">'
            f'<a href="#f{k}"><b>{_e(f.code)}</b> {_e(f.name)}</a> '
            f'<span class="span">steps {_steps(f)}{" · " + _e(f.where) if f.where else ""} '
            f"(message and fix beside {_e(home or 'its first plot')})</span></li>"
        )
    ident = f' id="f{k}"' if anchor else ""
    where = f" · {_e(f.where)}" if f.where else ""
    return (
        f'<li{ident} class="rl-finding sev-{f.severity.value}" data-finding="{k}">'
        f'<span class="sev">{f.severity.value}</span> <b>{_e(f.code)}</b> {_e(f.name)} '
        f'<span class="span">steps {_steps(f)}{where}</span>'
        f'<div class="msg">{_e(f.message)}</div><div class="fix">fix: {_e(f.fix)}</div></li>'
    )


def render_page(
    results: Sequence[RunResult],
    pages: Sequence[RunPage | None],
    overview: dict[str, Any],
    *,
    title: str,
    summary: str,
    version: str,
    errors: Sequence[str | None] = (),
) -> str:
    """The whole HTML document."""
    numbered: list[tuple[int, int, Finding]] = []  # (k, run index, finding)
    for i, result in enumerate(results):
        for f in result.findings:
            numbered.append((len(numbered), i, f))
    anchored: set[int] = set()
    for page in pages:
        if page is not None:
            anchored |= set(page.placed)
    out: list[str] = []
    w = out.append
    w("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>")
    w("<meta name='viewport' content='width=device-width, initial-scale=1'>")
    w(f"<title>{_e(title)}</title>")
    w(f"<style>{asset('uPlot.min.css')}</style><style>{asset('report.css')}</style>")
    w("</head><body>")
    w(f"<header><h1>{_e(title)}</h1><p class='summary'>{_e(summary)}</p>")
    w(
        "<p class='hint'>Drag across a plot to zoom, double-click to zoom out, hover for values, "
        "click a legend entry to hide a line; a shaded span is a finding: click it for its "
        "message and fix.</p>"
    )
    w(
        f"<p class='generated'>runlint {_e(version)} · "
        f"{_e(time.strftime('%Y-%m-%d %H:%M'))} · {len(results)} run"
        f"{'' if len(results) == 1 else 's'}</p></header><main>"
    )

    # findings table
    w("<section id='findings'><h2>Findings</h2>")
    if numbered:
        w(
            "<table class='rl-table sortable' id='findings-table'><thead><tr>"
            "<th data-sort='sev'>severity</th><th>code</th><th>name</th><th>run</th>"
            "<th data-sort='num'>steps</th><th>where</th><th>message</th></tr></thead><tbody>"
        )
        for k, i, f in sorted(numbered, key=lambda t: (-t[2].severity.rank, t[1], t[2].code, t[0])):
            name = results[i].name
            link = f"#f{k}" if k in anchored else f"#run-{i}"
            first = f.steps[0] if f.steps is not None else -1
            w(
                f"<tr class='sev-{f.severity.value}'>"
                f"<td data-v='{f.severity.rank}'><span class='sev'>{f.severity.value}</span></td>"
                f"<td><a href='{link}'>{_e(f.code)}</a></td><td>{_e(f.name)}</td>"
                f"<td><a href='#run-{i}'>{_e(name)}</a></td>"
                f"<td data-v='{first}'>{_steps(f)}</td><td>{_e(f.where or '')}</td>"
                f"<td class='msg'><a href='{link}'>{_e(f.message)}</a></td></tr>"
            )
        w("</tbody></table>")
    else:
        w("<p>No findings.</p>")
    w("</section>")

    # runs table
    w("<section id='runs'><h2>Runs</h2>")
    cols = [
        ("train_loss", "final train loss"),
        ("val_loss", "final val loss"),
        ("train_acc", "final train acc"),
        ("val_acc", "final val acc"),
        ("optimizer", "optimizer"),
        ("lr", "max lr"),
        ("batch_size", "batch"),
        ("weight_decay", "weight decay"),
        ("momentum", "momentum / β1"),
        ("epochs", "epochs"),
        ("steps", "steps"),
        ("params", "parameters"),
    ]
    w(
        "<p class='hint'>Click a column to sort; tick runs to overlay their curves. "
        "<button type='button' id='sel-all'>all</button> "
        "<button type='button' id='sel-none'>none</button></p>"
    )
    w("<table class='rl-table sortable' id='runs-table'><thead><tr><th></th>")
    w("<th>run</th><th>status</th><th data-sort='sev'>worst</th><th>codes</th>")
    for key, label in cols:
        kind = "" if key == "optimizer" else " data-sort='num'"
        w(f"<th{kind}>{_e(label)}</th>")
    w("</tr></thead><tbody>")
    for i, result in enumerate(results):
        page = pages[i] if i < len(pages) else None
        worst = _worst(result.findings)
        codes = " ".join(sorted({f.code for f in result.findings}))
        row = page.row if page is not None else {}
        checked = " checked" if page is not None and page.overlay.get("loss") is not None else ""
        w(
            f"<tr data-run='{i}'><td><input type='checkbox' class='sel' data-run='{i}'"
            f"{checked} aria-label='overlay {_e(result.name)}'></td>"
            f"<td><a href='#run-{i}'>{_e(result.name)}</a></td><td>{_e(result.status)}</td>"
            f"<td data-v='{SEVERITY_ORDER.get(worst, -1)}'>"
            f"{f'<span class=sev>{worst}</span>' if worst else ''}</td><td>{_e(codes)}</td>"
        )
        for key, _ in cols:
            value = row.get(key)
            sort = "" if key == "optimizer" else f" data-v='{'' if value is None else value}'"
            w(f"<td{sort}>{_e(_fmt(value))}</td>")
        w("</tr>")
    w("</tbody></table></section>")

    # overlays
    if len(results) > 1 and overview.get("plots"):
        unit = overview.get("xunit", "epoch")
        w("<section id='overlays'><h2>Selected runs</h2><div class='grid'>")
        for key, label in (
            ("loss", f"Loss (smoothed) against {unit}s"),
            ("val_loss", "Validation loss per epoch"),
            ("val_acc", "Validation accuracy per epoch"),
        ):
            if key in overview["plots"]:
                w(
                    f"<div class='card'><h3>{_e(label)}</h3>"
                    f"<div class='rl-plot rl-overlay' data-plot='{key}'></div></div>"
                )
        w("</div>")
        if overview.get("left_out"):
            w(
                "<p class='note'>Not overlaid (no epochs recorded): "
                f"{_e(', '.join(overview['left_out']))}</p>"
            )
        w("</section>")

    # one section per run
    for i, result in enumerate(results):
        page = pages[i] if i < len(pages) else None
        worst = _worst(result.findings)
        w(f"<section class='run' id='run-{i}' data-run='{i}'>")
        w(f"<h2>{_e(result.name)} <span class='status'>{_e(result.status)}</span>")
        if worst:
            w(f" <span class='sev sev-{worst}'>{worst}</span>")
        w(f"</h2><p class='path'>{_e(result.path)}</p>")
        error = result.error or (errors[i] if i < len(errors) else None)
        if page is None:
            w(f"<p class='error'>{_e(error or 'not readable')}</p>")
            if result.findings:
                w("<ul class='rl-notes'>")
                for k, ri, f in numbered:
                    if ri == i:
                        w(_finding_item(k, f, anchor=True))
                w("</ul>")
            w("</section>")
            continue
        if result.notes:
            w("<ul class='notes'>" + "".join(f"<li>{_e(n)}</li>" for n in result.notes) + "</ul>")
        if page.notes:
            w(
                "<details class='left-out'><summary>Plots left out: "
                f"{len(page.notes)}</summary><ul>"
                + "".join(f"<li>{_e(n)}</li>" for n in page.notes)
                + "</ul></details>"
            )
        index = {k: f for k, ri, f in numbered if ri == i}
        titles = {c.id: f"“{c.title}”" for c in page.cards} | {"meta": "the metadata"}
        w("<div class='grid'>")
        for card in page.cards:
            w(f"<div class='card card-{card.kind}' id='run-{i}-{card.id}'>")
            w(f"<h3>{_e(card.title)}</h3><p class='about'>{_e(card.about)}</p>")
            w(f"<div class='rl-plot' data-run='{i}' data-plot='{card.id}'></div>")
            if card.findings:
                w("<ul class='rl-notes'>")
                for k in card.findings:  # in full on its first plot, a link on the others
                    home = page.placed[k][0]
                    w(_finding_item(k, index[k], home == card.id, titles.get(home, home)))
                w("</ul>")
            w("</div>")
        w("</div>")
        # metadata, with the findings about the run's setup
        meta_findings = [k for k, where in page.placed.items() if "meta" in where]
        w(f"<div class='card card-meta' id='run-{i}-meta'><h3>Metadata</h3>")
        if meta_findings:
            w("<ul class='rl-notes'>")
            for k in meta_findings:
                home = page.placed[k][0]
                w(_finding_item(k, index[k], home == "meta", titles.get(home, home)))
            w("</ul>")
        w("<table class='rl-meta'>")
        for key, value in page.meta_rows:
            w(f"<tr><th>{_e(key)}</th><td>{_e(value)}</td></tr>")
        w("</table>")
        if page.params_rows:
            keys = list(page.params_rows[0])
            w(f"<details><summary>parameters ({len(page.params_rows)})</summary>")
            w("<table class='rl-table'><tr>" + "".join(f"<th>{_e(k)}</th>" for k in keys))
            w("</tr>")
            for p in page.params_rows:
                w("<tr>" + "".join(f"<td>{_e(_fmt(p.get(k)))}</td>" for k in keys) + "</tr>")
            w("</table></details>")
        if result.skipped:
            w(f"<details><summary>skipped rules ({len(result.skipped)})</summary><ul>")
            for s in result.skipped:
                w(f"<li>{_e(s.code)} {_e(s.name)}: {_e('; '.join(s.reasons))}</li>")
            w("</ul></details>")
        if result.rule_errors:
            w("<ul class='error'>")
            for e in result.rule_errors:
                w(f"<li>{_e(e.code)} {_e(e.name)} crashed: {_e(e.error)}</li>")
            w("</ul>")
        w("</div></section>")

    w("</main>")
    w(f"<script type='application/json' id='rl-overview'>{_json(overview)}</script>")
    for i, page in enumerate(pages):
        if page is not None:
            w(f"<script type='application/json' id='rl-run-{i}'>{_json(page.data)}</script>")
    w(f"<script>{asset('uPlot.iife.min.js')}</script>")
    w(f"<script>{asset('sortable.js')}</script>")
    w(f"<script>{asset('report.js')}</script>")
    w("</body></html>\n")
    return "".join(out)


def severity_of(findings: Sequence[Finding]) -> Severity | None:
    worst = _worst(findings)
    return Severity(worst) if worst else None
