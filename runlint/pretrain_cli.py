"""CLI commands that run before training: ``runlint gradcheck`` and ``runlint sanity``."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the pre-training commands to the ``runlint`` app."""
