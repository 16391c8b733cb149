"""The one command-line parser: every command and flag is declared once, as data, here or in
the command's module, and argparse is built from the declarations when a command runs.

A ``Flag`` is an option (``--format``/``-f``) or, when its name has no dash, a positional
argument. Its ``value`` turns the text into a value (and rejects a bad one: a usage error,
exit 2); without ``value`` it is a switch. ``help`` is the line ``--help`` prints, ``doc`` the
longer text of the README's table of flags (``runlint.docs`` generates it). A ``Command`` names
its flags through a function, called each time its parser is built, so flags generated from
the schema (``--num-classes``, ...) follow it without another edit.

Adding a flag is one ``Flag(...)`` in the command's list and reading ``args.<dest>`` in the
command; an alias is one more name (``("--format", "--output-format", "-f")``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from runlint.hints import suggest

PROG = "runlint"

__all__ = [
    "Command",
    "CommandError",
    "Flag",
    "UsageError",
    "at_least",
    "build_parser",
    "parse",
    "positive_int",
    "print_error",
    "print_note",
    "print_usage_error",
    "print_warning",
    "switch",
]


class CommandError(Exception):
    """A usage or input error a command reports as one ``runlint: error:`` line (exit 2)."""


class UsageError(CommandError):
    """The command line itself is wrong; the error points at ``PROG --help``."""

    def __init__(self, message: str, prog: str = PROG) -> None:
        super().__init__(message)
        self.prog = prog


@dataclass(frozen=True)
class Flag:
    """One option or positional argument of a command, declared once."""

    #: ``("--format", "-f")``; a single name without a dash is a positional argument
    names: tuple[str, ...]
    help: str
    #: text → value (raise ``ValueError``/``ArgumentTypeError`` to reject); None: a switch
    #: (``switch(...)`` declares one), off unless given
    value: Callable[[str], Any] | None = str
    default: Any = None
    choices: tuple[str, ...] = ()
    #: an option that may be given several times (the values in a list, in order)
    repeat: bool = False
    #: a positional argument taking one or more values (zero or more with ``optional``)
    many: bool = False
    optional: bool = False
    metavar: str = ""
    #: the attribute of the parsed arguments (default: the first long name, snake_case)
    dest: str = ""
    #: the README's description of the flag (``help`` when empty)
    doc: str = ""

    @property
    def positional(self) -> bool:
        return len(self.names) == 1 and not self.names[0].startswith("-")

    @property
    def switch(self) -> bool:
        return self.value is None and not self.positional

    @property
    def shown_names(self) -> list[str]:
        """Short names first: ``-f, --format``."""
        return sorted(self.names, key=lambda n: (n.startswith("--"), len(n)))

    @property
    def value_name(self) -> str:
        """``FORMAT``, ``N``: what ``--help`` writes for the value."""
        return self.metavar or self.key.upper()

    @property
    def key(self) -> str:
        """Where the value lands in the parsed arguments."""
        if self.dest:
            return self.dest
        long = next((n for n in self.names if n.startswith("--")), self.names[0])
        return long.lstrip("-").replace("-", "_")

    @property
    def spelled(self) -> str:
        """The flag as the README shows it: ``-f/--format text|json``, ``--jobs N``."""
        names = "/".join(self.shown_names)
        if self.switch:
            return names
        shown = "|".join(self.choices) if self.choices else self.value_name
        if self.positional:
            return shown + ("..." if self.many else "")
        return f"{names} {shown}"


def switch(names: tuple[str, ...], help: str, doc: str = "", dest: str = "") -> Flag:
    """A flag without a value: off unless given."""
    return Flag(names, help, value=None, doc=doc, dest=dest)


@dataclass(frozen=True)
class Command:
    """A subcommand: its name, help, flags and what runs it (returns the exit code)."""

    name: str
    #: one line, for ``runlint --help``
    summary: str
    #: the text of ``runlint NAME --help`` below the usage (the summary when empty)
    description: str
    flags: Callable[[], Sequence[Flag]]
    run: Callable[[argparse.Namespace], int]


# -- value parsers -------------------------------------------------------------------------------


def at_least(kind: Callable[[str], Any], minimum: float) -> Callable[[str], Any]:
    """A parser of ``kind`` (int, float) that rejects values below ``minimum``."""
    noun = "an integer" if kind is int else "a number"

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {noun}, got {text!r}") from None
        if not value >= minimum:
            raise argparse.ArgumentTypeError(f"must be ≥ {minimum:g}, got {text}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


positive_int = at_least(int, 1)


# -- building and running the parser ---------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message, self.prog)


def _help(flag: Flag) -> str:
    text = flag.help
    if flag.choices and flag.metavar:  # else argparse shows them: {info,warning,error}
        text += f" One of: {', '.join(flag.choices)}."
    shown = flag.default
    if shown is not None and shown is not False and shown != [] and not flag.repeat:
        text += f" [default: {shown}]"
    return text.replace("%", "%%")


def build_parser(command: Command) -> argparse.ArgumentParser:
    """The argparse parser of ``command``, built from its flags."""
    parser = _Parser(
        prog=f"{PROG} {command.name}",
        description=command.description or command.summary,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    for flag in command.flags():
        kwargs: dict[str, Any] = {"help": _help(flag)}
        if flag.positional:
            kwargs["nargs"] = ("*" if flag.optional else "+") if flag.many else None
            kwargs["metavar"] = flag.metavar or flag.names[0].upper()
            kwargs["type"] = flag.value
            parser.add_argument(flag.key, **kwargs)
            continue
        kwargs["dest"] = flag.key
        if flag.switch:
            kwargs["action"] = "store_true"
        else:
            kwargs["action"] = "append" if flag.repeat else "store"
            kwargs["default"] = flag.default
            kwargs["type"] = flag.value
            if flag.choices:
                kwargs["choices"] = flag.choices
            if flag.metavar or not flag.choices:
                kwargs["metavar"] = flag.value_name
        parser.add_argument(*flag.shown_names, **kwargs)
    return parser


def parse(command: Command, argv: Sequence[str]) -> argparse.Namespace:
    """``argv`` parsed by ``command``'s flags (options and positionals may be intermixed).

    Raises ``UsageError`` for a bad command line (an unknown option gets a "did you mean").
    ``--help`` prints the help and raises ``SystemExit(0)``.
    """
    parser = build_parser(command)
    args, extra = parser.parse_known_intermixed_args(list(argv))
    if extra:
        unknown = extra[0]
        if unknown.startswith("-"):
            name = unknown.split("=", 1)[0]
            known = [o for a in parser._actions for o in a.option_strings]
            raise UsageError(f"unknown option {name!r}{suggest(name, known)}", parser.prog)
        raise UsageError(f"unexpected argument {unknown!r}", parser.prog)
    return args


def print_usage_error(error: UsageError) -> None:
    """One ``runlint: error:`` line on stderr, pointing at the command's ``--help``."""
    print_error(f"{error} (see '{error.prog} --help')")


def print_note(message: object) -> None:
    """One ``runlint: <message>`` line on stderr (escaped as ``print_error``)."""
    from runlint.report.escape import guard_text, text

    print(guard_text(f"{PROG}: {text(message)}"), file=sys.stderr)


def print_warning(message: object) -> None:
    """One ``runlint: warning:`` line on stderr (escaped as ``print_error``)."""
    from runlint.report.escape import guard_text, text

    print(guard_text(f"{PROG}: warning: {text(message)}"), file=sys.stderr)


def print_error(message: object) -> None:
    """One ``runlint: error:`` line on stderr; what came from the input is made visible and the
    line cannot be a CI workflow command (``runlint.report.escape``)."""
    from runlint.report.escape import guard_text, text

    print(guard_text(f"{PROG}: error: {text(message)}"), file=sys.stderr)
