"""Regenerate ``docs/report.png``, the README's picture of ``runlint report``.

    python docs/make_screenshot.py [--out docs/report.png]

Checks a few runs of the bundled corpus, writes their HTML report and photographs one run's
section in headless Chromium (Debian's ``/usr/bin/chromium`` driven by Playwright; no browser
download).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "fixtures" / "corpus"
RUNS = ["rl503-cnn-negative-bias", "rl301-tiny-train-set", "blobs-mlp-adam-cosine"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "report.png")
    parser.add_argument("--run", default=RUNS[0], help="the run whose section is shown")
    parser.add_argument("--height", type=int, default=1300, help="pixels of the section shown")
    args = parser.parse_args()

    from runlint.report.html import browser, write_report

    with tempfile.TemporaryDirectory() as tmp, browser.headless_page(1280, 900) as (page, _):
        page_file = Path(tmp) / "report.html"
        write_report([CORPUS / name for name in RUNS], page_file)
        page.goto(page_file.as_uri(), wait_until="load")
        page.wait_for_function("window.runlintReport && window.runlintReport.ready")
        page.evaluate("window.runlintReport.drawAll()")
        index = RUNS.index(args.run) if args.run in RUNS else 0
        box = page.locator(f"#run-{index}").bounding_box()
        assert box is not None
        page.screenshot(
            path=str(args.out),
            full_page=True,
            clip={"x": 0, "y": box["y"], "width": 1280, "height": args.height},
        )
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
