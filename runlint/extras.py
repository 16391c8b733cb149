"""Optional dependencies: one clear line naming the extra to install when one is missing.

The plain install (``pip install runlint``) checks runs without torch; recording, gradcheck,
sanity and the framework callbacks need an extra (``runlint[torch]``, ``runlint[lightning]``,
``runlint[hf]``); reading an Optuna storage and pruning a study with runlint's live findings
need ``runlint[optuna]``, the Ray Tune stopper ``runlint[ray]``, runs in object storage
(``s3://...``, any fsspec URL) ``runlint[s3]``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["OPTIONAL_MODULES", "MissingExtra", "requires_extra"]

#: Top-level modules that only the extras install.
OPTIONAL_MODULES = frozenset(
    {
        "torch",
        "lightning",
        "transformers",
        "accelerate",
        "optuna",
        "sqlalchemy",
        "ray",
        "fsspec",
        "s3fs",
    }
)


class MissingExtra(ImportError):
    """A feature's optional dependency is not installed; the message says what to install."""


@contextmanager
def requires_extra(extra: str, feature: str) -> Iterator[None]:
    """Turn the ``ModuleNotFoundError`` of an optional dependency into ``MissingExtra``.

    ``extra`` is the extra that installs everything the feature needs.
    """
    try:
        yield
    except ModuleNotFoundError as exc:
        top = (exc.name or "").partition(".")[0]
        if top not in OPTIONAL_MODULES:
            raise
        raise MissingExtra(
            f"{feature} needs {top}, which is not installed: pip install 'runlint[{extra}]'",
            name=exc.name,
        ) from None
