"""The ``runlint`` command line."""

from __future__ import annotations

import typer

from runlint import pretrain_cli

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help="A linter for neural-network training runs."
)
pretrain_cli.register(app)


@app.command()
def version() -> None:
    """Print runlint's version."""
    from runlint import __version__

    typer.echo(__version__)


def main() -> None:
    app()
