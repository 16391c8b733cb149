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
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "report.png")
    parser.add_argument("--run", default=RUNS[0], help="the run whose section is shown")
    parser.add_argument("--height", type=int, default=1300, help="pixels of the section shown")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    from runlint.report.html import write_report

    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
        page_file = Path(tmp) / "report.html"
        write_report([CORPUS / name for name in RUNS], page_file)
        ctx = pw.chromium.launch_persistent_context(
            str(Path(tmp) / "profile"),  # a fresh --user-data-dir
            executable_path="/usr/bin/chromium",
            args=FLAGS,
            headless=True,
            viewport={"width": 1280, "height": 900},
        )
        page = ctx.new_page()
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
        ctx.close()
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
