"""runlint: a linter for neural-network training runs.

``runlint.record`` (needs torch) records a PyTorch run into a Parquet run directory;
``runlint.load_run`` reads one back as a ``Run`` for the rules. Everything but the recorder
imports without torch.
"""

from __future__ import annotations

from importlib import metadata
from typing import TYPE_CHECKING, Any

from runlint.check.live import LiveCheck, LiveEvent
from runlint.check.rule import Finding, Rule, Severity
from runlint.extras import MissingExtra, requires_extra
from runlint.run import Run, RunError, find_runs, load_run

if TYPE_CHECKING:
    from runlint.recorder import Recorder
    from runlint.recorder.rundir import RunExistsError

try:
    __version__ = metadata.version("runlint")  # one home: pyproject.toml's [project] version
except metadata.PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"
__all__ = [
    "Finding",
    "LiveCheck",
    "LiveEvent",
    "MissingExtra",
    "Recorder",
    "Rule",
    "Run",
    "RunError",
    "RunExistsError",
    "Severity",
    "__version__",
    "find_runs",
    "load_run",
    "record",
]


def record(
    model: Any, optimizer: Any, logdir: Any, meta: dict[str, Any] | None = None, **options: Any
) -> Recorder:
    """Record a PyTorch training run into ``logdir``; use as a context manager.

    See ``runlint.recorder.Recorder`` for the options (probe schedules, flush interval, live
    checking: ``check=True``, ``stop_on="error"``, ``on_finding``).
    Raises ``MissingExtra`` (an ``ImportError``) when torch is not installed.
    """
    return _recorder()(model, optimizer, logdir, meta=meta, **options)


def _recorder() -> type[Recorder]:
    with requires_extra("torch", "runlint.record"):
        from runlint.recorder import Recorder
    return Recorder


def __getattr__(name: str) -> Any:
    if name == "Recorder":
        return _recorder()
    if name == "RunExistsError":  # what ``record`` raises for a directory it may not write
        with requires_extra("torch", "runlint.record"):
            from runlint.recorder.rundir import RunExistsError
        return RunExistsError
    raise AttributeError(f"module 'runlint' has no attribute {name!r}")
