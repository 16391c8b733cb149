"""The ``runlint`` command line: ``check``, ``report``, ``sweep``, ``rules``, ``rule``,
``gradcheck``, ``sanity``.

One parser, argparse, for every command: each command and each of its flags is declared once
(``runlint.cli.flags``), in the command's module. argparse was chosen over typer because it
is part of Python, costs about 4 ms to import and build where typer and click cost 0.1-0.2 s
of a ``runlint check`` that should start fast, and because flags generated from the schema
are plain data for it. Nothing here imports torch.

Exit codes: 0 success / no finding at or above ``--fail-on``; 1 findings (or a failed
gradcheck or sanity check); 2 a usage, configuration or input error.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from runlint import __version__
from runlint.cli.check import CHECK
from runlint.cli.flags import (
    PROG,
    Command,
    CommandError,
    UsageError,
    parse,
    print_error,
    print_usage_error,
)
from runlint.cli.pretrain import GRADCHECK, SANITY
from runlint.cli.report import REPORT
from runlint.cli.rules import RULE, RULES
from runlint.cli.sweep import SWEEP
from runlint.hints import suggest

__all__ = ["COMMANDS", "Command", "invoke", "main"]


def _version(args: object) -> int:
    print(__version__)
    return 0


VERSION = Command("version", "Print runlint's version.", "", lambda: (), _version)

#: Every command, in the order ``runlint --help`` lists them.
COMMANDS: dict[str, Command] = {
    c.name: c for c in (CHECK, REPORT, SWEEP, RULES, RULE, GRADCHECK, SANITY, VERSION)
}

DESCRIPTION = 'A linter for neural-network training runs (CS231n "Learning the parameters").'


def main_help() -> str:
    """What ``runlint --help`` prints."""
    width = max(map(len, COMMANDS))
    lines = [
        f"usage: {PROG} [--version] [-h] COMMAND [ARGS]...",
        "",
        DESCRIPTION,
        "",
        "commands:",
        *(f"  {c.name:{width}s}  {c.summary}" for c in COMMANDS.values()),
        "",
        "options:",
        "  -h, --help  show this help message and exit",
        "  --version   print the version and exit",
        "",
        f"Run '{PROG} COMMAND --help' for a command's flags.",
    ]
    return "\n".join(lines) + "\n"


def invoke(argv: Sequence[str]) -> int:
    """Run the command line ``argv`` (without the program name); return the exit code.

    Output goes to ``sys.stdout``/``sys.stderr``; errors are one ``runlint: error:`` line.
    """
    argv = list(argv)
    if not argv:
        sys.stdout.write(main_help())
        return 2
    first = argv[0]
    if first in ("-h", "--help"):
        sys.stdout.write(main_help())
        return 0
    if first == "--version":
        print(f"{PROG} {__version__}")
        return 0
    command = COMMANDS.get(first)
    try:
        if command is None:
            what = "option" if first.startswith("-") else "command"
            raise UsageError(f"unknown {what} {first!r}{suggest(first, list(COMMANDS))}")
        try:
            args = parse(command, argv[1:])
        except SystemExit as exc:  # --help
            return exc.code if isinstance(exc.code, int) else 0
        return command.run(args)
    except UsageError as exc:
        print_usage_error(exc)
        return 2
    except CommandError as exc:
        print_error(exc)
        return 2


def main(argv: Sequence[str] | None = None, *, fast_exit: bool = True) -> None:
    """Entry point of the ``runlint`` script and ``python -m runlint``.

    With ``fast_exit`` the process ends (after flushing its output) without the interpreter's
    teardown of pandas and pyarrow: a tenth of a second of a small check.
    """
    for stream in (sys.stdout, sys.stderr):  # a terminal that is not UTF-8: escapes, no crash
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
    try:
        code = invoke(sys.argv[1:] if argv is None else argv)
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:  # `runlint check ... | head`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    if fast_exit:
        os._exit(code)
    sys.exit(code)
