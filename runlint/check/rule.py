"""What a rule is: a class with a code, a name, the data it requires and typed options."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from runlint.run import Run

__all__ = ["Finding", "Rule", "Severity"]


class Severity(str, enum.Enum):  # noqa: UP042  (str() stays "Severity.X", as rules expect)
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    @property
    def rank(self) -> int:
        return ("info", "warning", "error").index(self.value)


@dataclass
class Finding:
    """One problem in one run. ``message`` states the observation with its numbers."""

    code: str
    name: str
    severity: Severity
    message: str
    fix: str
    run: str = ""
    steps: tuple[int, int] | None = None  # first and last step the evidence covers
    where: str | None = None  # a parameter, module or metric name
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["severity"] = self.severity.value
        out["steps"] = list(self.steps) if self.steps is not None else None
        return out


class Rule:
    """Base class of every rule in ``rules/``.

    Subclasses set ``code`` (``RL`` + three digits), ``name`` (kebab-case), ``severity``,
    ``requires`` (``Run.has`` names; a run lacking any of them skips the rule with a reason) and
    ``Options`` (a dataclass of thresholds, overridable from ``[tool.runlint.RLxxx]``), and
    implement ``check(run)``. The class docstring is the rule's documentation.
    """

    code: ClassVar[str]
    name: ClassVar[str]
    severity: ClassVar[Severity] = Severity.WARNING
    requires: ClassVar[tuple[str, ...]] = ()

    @dataclass
    class Options:
        pass

    def __init__(self, options: Options | None = None, severity: Severity | None = None) -> None:
        self.options = options if options is not None else self.Options()
        if severity is not None:
            self.severity = severity  # type: ignore[misc]

    def missing(self, run: Run) -> list[str]:
        """Requirements this run lacks (empty when the rule can run)."""
        return [r for r in self.requires if not run.has(r)]

    def check(self, run: Run) -> Iterator[Finding]:
        raise NotImplementedError

    def finding(self, run: Run, message: str, fix: str, **kwargs: Any) -> Finding:
        """A finding of this rule, at its configured severity unless ``severity`` is given."""
        kwargs.setdefault("severity", self.severity)
        return Finding(self.code, self.name, message=message, fix=fix, run=str(run.path), **kwargs)
