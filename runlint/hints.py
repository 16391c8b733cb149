""" "Did you mean" hints for names a user (or a rule author) got wrong."""

from __future__ import annotations

import difflib
from collections.abc import Sequence

__all__ = ["suggest"]


def suggest(word: str, choices: Sequence[str], prefix: str = "") -> str:
    """``; did you mean 'x'?`` for the closest choice (``prefix`` + it), or an empty string.

    Tried as written, then upper-cased (rule codes: ``rl401`` → ``RL401``).
    """
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    if not close:
        close = difflib.get_close_matches(word.upper(), list(choices), n=1, cutoff=0.6)
    return f"; did you mean {prefix + close[0]!r}?" if close else ""
