"""How big and how fast the HTML report is: build time, file size, browser load time.

    python bench/report_speed.py [--runs 50] [--steps 10000] [--layers 20] [--every 10]
                                 [--library uplot|plotly] [--keep report.html]

Synthesizes runs with ``bench/check_speed.py``'s generator (``steps`` every step, ``params``
and ``activations`` every ``--every`` steps for ``--layers`` layers, histograms, first-layer
weights, ten epochs), checks them, renders the page and opens it in headless Chromium
(``/usr/bin/chromium`` through Playwright; the browser rows are skipped when either is missing).

Browser times: *load* is navigation until the script has run and the plots in the first
screen are drawn (what a person waits for); *all plots* then draws every plot of every run
(the page normally draws a run only as it scrolls into view). ``--library plotly`` renders the
same data with Plotly instead of uPlot (``plotly`` must be installed; its bundle is inlined):
the measurement behind the choice of uPlot (README / report).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from check_speed import write_corpus

from runlint.report.html import browser


def plotly_page(page: str) -> str:
    """The same page drawn by Plotly: its bundle and ``plotly_draw.js`` replace uPlot's."""
    import plotly  # noqa: F401  (the candidate must be installed)
    from plotly.offline import get_plotlyjs

    from runlint.report.html.page import asset

    draw = (Path(__file__).resolve().parent / "plotly_draw.js").read_text(encoding="utf-8")
    for name in ("uPlot.iife.min.js", "report.js"):
        text = asset(name)
        assert text in page, name
        page = page.replace(text, "", 1)
    page = page.replace(asset("uPlot.min.css"), "", 1)
    return page.replace("<script></script>", "").replace(
        "</body>", f"<script>{get_plotlyjs()}</script><script>{draw}</script></body>", 1
    )


def browse(path: Path) -> dict[str, float] | str:
    """Load and draw times of the page in headless Chromium, or why they were not measured."""
    why = browser.missing()
    if why:
        return why
    with browser.headless_page(1400, 1000) as (page, errors):
        start = time.perf_counter()
        page.goto(path.as_uri(), wait_until="load", timeout=120_000)
        page.wait_for_function("window.runlintReport && window.runlintReport.ready")
        # the first screen: whatever the observer has scheduled is drawn in the next frames
        page.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
        load = time.perf_counter() - start
        t0 = time.perf_counter()
        drawn = page.evaluate("window.runlintReport.drawAll()")
        page.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
        everything = time.perf_counter() - t0
        total = page.evaluate("window.runlintReport.total")
        heap = page.evaluate("performance.memory ? performance.memory.usedJSHeapSize : 0")
    if errors:
        return "console errors: " + "; ".join(errors[:3])
    return {
        "load": load,
        "all": everything,
        "drawn": float(drawn),
        "total": float(total),
        "heap_mb": heap / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--layers", type=int, default=20)
    parser.add_argument("--every", type=int, default=10)
    parser.add_argument("--library", choices=("uplot", "plotly"), default="uplot")
    parser.add_argument("--keep", type=Path, help="also copy the page here")
    args = parser.parse_args()

    from runlint.report.html import check_paths, render

    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory(prefix="runlint-report-") as tmp:
        corpus = Path(tmp) / "runs"
        write_corpus(corpus, args.runs, args.steps, args.layers, args.every)
        print(
            f"corpus: {args.runs} runs × {args.steps} steps × {args.layers} layers "
            f"(params/activations every {args.every} steps)"
        )
        t0 = time.perf_counter()
        report = check_paths([corpus])
        checked = time.perf_counter() - t0
        t0 = time.perf_counter()
        page = render(report)
        if args.library == "plotly":
            page = plotly_page(page)
        out = Path(tmp) / "report.html"
        out.write_text(page, encoding="utf-8")
        rendered = time.perf_counter() - t0
        size = out.stat().st_size
        print(f"library: {args.library}")
        print(f"check (rules, {args.runs} runs):     {checked:7.2f} s")
        print(f"render (read runs, build page):  {rendered:7.2f} s")
        print(f"file size:                       {size / 2**20:7.2f} MiB ({size:,} bytes)")
        measured = browse(out)
        if isinstance(measured, str):
            print(f"browser: skipped: {measured}")
        else:
            print(f"browser load (first screen):     {measured['load']:7.2f} s")
            print(
                f"browser, every plot drawn:       {measured['all']:7.2f} s "
                f"({measured['drawn']:.0f} of {measured['total']:.0f} plots), "
                f"JS heap {measured['heap_mb']:.0f} MiB"
            )
        if args.keep:
            args.keep.write_bytes(out.read_bytes())


if __name__ == "__main__":
    main()
