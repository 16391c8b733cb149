"""``python -m runlint.report.html PATH... -o report.html``: check runs and write the HTML report.

What ``runlint report`` does (the command line wires the same ``write_report``); exit codes as
``runlint check``: 0, 1 for findings at or above the config's fail-on, 2 for bad input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m runlint.report.html",
        description="Check training runs and write one self-contained HTML report.",
    )
    parser.add_argument("paths", nargs="+", type=Path, help="run directories or folders of runs")
    parser.add_argument("-o", "--output", type=Path, default=Path("report.html"))
    parser.add_argument("--title")
    parser.add_argument("--config", type=Path)
    parser.add_argument("--select", action="append")
    parser.add_argument("--ignore", action="append")
    parser.add_argument("-j", "--jobs", type=int, default=1)
    args = parser.parse_args(argv)

    from runlint.check.config import ConfigError
    from runlint.report.html import check_paths, write_report

    def split(values: list[str] | None) -> list[str]:
        return [v.strip() for value in values or [] for v in value.split(",") if v.strip()]

    try:
        report = check_paths(
            args.paths,
            config=args.config,
            select=split(args.select) or None,
            ignore=split(args.ignore),
            jobs=args.jobs,
        )
    except ConfigError as exc:
        print(f"runlint: error: {exc}", file=sys.stderr)
        return 2
    try:
        written = write_report(report, args.output, title=args.title)
    except OSError as exc:
        print(
            f"runlint: error: {args.output}: cannot write ({exc.strerror or exc})", file=sys.stderr
        )
        return 2
    print(
        f"{written.path}: {written.runs} run{'' if written.runs == 1 else 's'}, "
        f"{written.findings} finding{'' if written.findings == 1 else 's'}, "
        f"{written.bytes / 2**20:.1f} MiB; {report.summary_line()}"
    )
    return report.exit_code


if __name__ == "__main__":
    sys.exit(main())
