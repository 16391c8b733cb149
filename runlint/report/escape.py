"""Neutralising what comes from a log at the output boundary: one function per format.

Every string a report prints may come from a log folder that someone else wrote: a run's
folder name, a metric key, a module or parameter name, a metadata value, an error message
quoting any of these. A log folder is untrusted input, so each format passes every string
through its function here before it is written:

``text``      control characters, ANSI/OSC escape sequences, bidirectional overrides, line and
              paragraph separators and lone surrogates (the bytes of a non-UTF-8 file name)
              are made visible (``\\x1b``, ``\\n``, ``\\u202e``, ``\\xff``): a name cannot move
              the cursor, clear the terminal, set a window title, add a hyperlink or start a
              line of its own.
``github``    ``github_data``/``github_property`` encode ``%``, CR and LF (and ``:``, ``,`` in
              properties) as GitHub documents for workflow commands, after making the other
              control characters visible, so a name cannot end the annotation or start one.
``xml``       characters XML 1.0 cannot hold (C0 controls, U+FFFE/U+FFFF, lone surrogates) and
              the other invisible ones are made visible as in ``text``; tab and LF are kept.
``json``      lone surrogates become the visible ``\\xff`` form (a JSON document is UTF-8 and
              must encode); the other invisible characters are kept as data, written as
              ``\\uXXXX`` escapes by ``guard_json``, so the document prints inert.

A CI log is parsed line by line by the runner: GitHub Actions runs a line that starts (after
blanks) with ``::`` as a workflow command, and a line holding ``##[`` anywhere as a legacy one;
a bare CR ends a line. ``guard_text``/``guard_json``/``guard_xml`` make sure no line a report
writes does either, each in its format's own terms (``\\::`` in text, ``\\u005b`` in a JSON
string and ``&#91;`` in XML decode to the same data), so a report printed to a CI log is inert.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TextIO

__all__ = [
    "GuardedWriter",
    "github_data",
    "github_property",
    "guard_json",
    "guard_text",
    "guard_xml",
    "json",
    "text",
    "visible",
    "xml",
]

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _show(ch: str) -> str:
    code = ord(ch)
    if ch in _NAMED:
        return _NAMED[ch]
    if 0xDC80 <= code <= 0xDCFF:  # surrogateescape: the undecodable byte of a file name
        return f"\\x{code - 0xDC00:02x}"
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def visible(value: str, keep: str = "") -> str:
    """``value`` with every character that is not printable (``str.isprintable``: controls,
    format characters such as bidi overrides and zero-width joiners, separators other than the
    space, surrogates, private-use and unassigned code points) written as a visible escape;
    the characters in ``keep`` (e.g. ``"\\n"``) are left as they are."""
    if value.isprintable():
        return value
    return "".join(ch if ch.isprintable() or ch in keep else _show(ch) for ch in value)


def text(value: object) -> str:
    """A string for the text report (a terminal, or a CI log): one line, nothing invisible."""
    return visible(str(value))


def github_data(value: object) -> str:
    """The message of a workflow command: invisible characters shown, then ``%``, CR and LF
    encoded as GitHub documents (a newline in the message is ``%0A``, shown as a line break
    inside the annotation, never a new command)."""
    shown = visible(str(value), keep="\r\n")
    return shown.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def github_property(value: object) -> str:
    """A property value of a workflow command (``file=``, ``title=``): also ``:`` and ``,``."""
    return github_data(value).replace(":", "%3A").replace(",", "%2C")


def xml(value: object) -> str:
    """Text for an XML 1.0 document: only characters XML can hold, nothing invisible but tab
    and LF (a CR is shown, since XML parsers turn it into LF and a CI log ends a line there)."""
    return visible(str(value), keep="\n\t")


def json(value: str) -> str:
    """A string a UTF-8 JSON document can hold: lone surrogates shown as in ``text``."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "".join(_show(ch) if 0xD800 <= ord(ch) <= 0xDFFF else ch for ch in value)
    return value


# -- whole lines, as a CI runner reads them --------------------------------------------------------

_COMMAND_START = re.compile(r"^(\s*)::", re.M)
_LEGACY = "##["


def guard_text(line: str) -> str:
    """A line of the text report that a CI runner will not run as a workflow command."""
    line = line.replace(_LEGACY, "##\\[")
    return _COMMAND_START.sub(lambda m: m.group(1) + "\\::", line)


def guard_json(document: str) -> str:
    """A serialized JSON document (SARIF too) that is inert when printed, with the same data:
    outside its strings a document holds only printable characters and LF, so an invisible
    character (ESC, a bidi override, U+2028) is inside a string and is written ``\\uXXXX``;
    a ``[`` after ``##`` is written ``\\u005b`` (no legacy workflow command)."""
    document = document.replace(_LEGACY, "##\\u005b")
    if document.replace("\n", "").isprintable():
        return document
    return "".join(ch if ch.isprintable() or ch == "\n" else _json_escape(ch) for ch in document)


def _json_escape(ch: str) -> str:
    code = ord(ch)
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def guard_xml(document: str) -> str:
    """A serialized XML document whose lines are not workflow commands: ``&#58;``/``&#91;``
    are character references, so the parsed text is unchanged."""
    document = document.replace(_LEGACY, "##&#91;")
    return _COMMAND_START.sub(lambda m: m.group(1) + "&#58;:", document)


class GuardedWriter:
    """A text stream that passes each complete line through ``guard`` before writing it (for
    output composed by a library, such as rich, that may wrap a line anywhere)."""

    def __init__(self, out: TextIO, guard: Callable[[str], str] = guard_text) -> None:
        self.out = out
        self.guard = guard
        self._pending = ""

    def write(self, data: str) -> int:
        self._pending += data
        if "\n" in self._pending:
            done, self._pending = self._pending.rsplit("\n", 1)
            self.out.write("\n".join(self.guard(line) for line in done.split("\n")) + "\n")
        return len(data)

    def flush(self) -> None:
        if self._pending:
            self.out.write(self.guard(self._pending))
            self._pending = ""
        self.out.flush()

    def isatty(self) -> bool:
        return bool(getattr(self.out, "isatty", lambda: False)())

    def fileno(self) -> int:
        return int(self.out.fileno())

    @property
    def encoding(self) -> str:
        return str(getattr(self.out, "encoding", None) or "utf-8")
