"""The progress line of ``runlint check``: runs done / found and the rate, on stderr, only when
stderr is a terminal (a CI log or a pipe gets nothing), redrawn at most every ``interval``
seconds and cleared before the report prints a line and at the end."""

from __future__ import annotations

import time
from typing import TextIO

__all__ = ["Progress"]

#: Erase the line the cursor is on and go back to its start.
CLEAR = "\r\x1b[K"


class Progress:
    """``checked 120/4,311 runs (35.2 runs/s), still walking``: one line, redrawn in place."""

    def __init__(self, stream: TextIO, *, interval: float = 0.2) -> None:
        self.stream = stream
        self.interval = interval
        self.found = 0
        self.done = 0
        self.walking = True
        self._start = time.monotonic()
        self._drawn_at = 0.0
        self._shown = False

    @classmethod
    def on(cls, stream: TextIO, enabled: bool = True) -> Progress | None:
        """A progress line on ``stream`` when it is a terminal (and ``enabled``), else None."""
        try:
            tty = bool(stream.isatty())
        except (AttributeError, ValueError, OSError):
            tty = False
        return cls(stream) if enabled and tty else None

    def line(self) -> str:
        elapsed = max(time.monotonic() - self._start, 1e-9)
        rate = self.done / elapsed
        tail = ", still walking" if self.walking else ""
        return f"checked {self.done:,}/{self.found:,} runs ({rate:.1f} runs/s){tail}"

    def update(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._drawn_at < self.interval:
            return
        self._drawn_at = now
        self.stream.write(CLEAR + self.line())
        self.stream.flush()
        self._shown = True

    def clear(self) -> None:
        """Erase the line (before the report prints, so the two never mix)."""
        if self._shown:
            self.stream.write(CLEAR)
            self.stream.flush()
            self._shown = False
