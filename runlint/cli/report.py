"""``runlint report PATH... -o report.html``: ``runlint check --format html``, written to a file.

The same flags as ``check`` (one declaration: ``check_flags``), but for ``--format``; the page
goes to ``report.html`` unless ``-o`` names another file.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from runlint.cli.check import check_flags, run_check
from runlint.cli.flags import Command, Flag

__all__ = ["REPORT"]

DEFAULT = Path("report.html")


def report_flags() -> list[Flag]:
    """``check``'s flags without ``--format``, with ``-o`` defaulting to ``report.html``."""
    out = []
    for flag in check_flags():
        if "--format" in flag.names:
            continue
        if "--output" in flag.names:
            flag = replace(
                flag, help=f"Write the page to this file. [default: {DEFAULT}]", default=DEFAULT
            )
        out.append(flag)
    return out


def run_report(args: argparse.Namespace) -> int:
    args.fmt = "html"
    code = run_check(args)
    print(f"wrote {args.output}")
    return code


REPORT = Command(
    "report",
    "Check training runs and write one self-contained HTML page with the seed's plots.",
    """Check training runs and write one self-contained HTML page: the seed's plots (loss
against epochs, learning rate, train/validation curves, update ratios, activation statistics
and histograms, first-layer weights), every finding drawn where it was found.

Exit codes as for check.""",
    report_flags,
    run_report,
)
