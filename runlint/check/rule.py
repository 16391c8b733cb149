"""What a rule is: a class with a code, a name, the data it requires and typed options.

A rule is checked when its class is defined: a mistake (no name, a code out of format, a
docstring without its sections, an unknown column in ``requires``, an option without help) is
one ``RuleDefinitionError`` naming the rule's file, raised at import.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from runlint.run import Run
from runlint.schema import AnyOf, Need, SchemaError, any_of, requirement

__all__ = [
    "DOC_SECTIONS",
    "Finding",
    "NotJudged",
    "Rule",
    "RuleDefinitionError",
    "Severity",
    "any_of",
    "doc_section",
    "option",
]

CODE_RE = re.compile(r"^RL\d{3}$")
NAME_RE = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
#: The sections every rule's docstring has, in this order (its documentation page).
DOC_SECTIONS = ("Why it matters", "Known problems", "Fix", "Seed")


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


class NotJudged(Exception):
    """Raised by ``check`` when the run's data is there but too little to judge (5 loss points
    where a curve needs 8): the rule is reported as skipped with this reason (``-v``)."""


class RuleDefinitionError(TypeError):
    """A rule class that breaks the contract; the message names its file and what is wrong."""


def option(default: Any, help: str) -> Any:
    """A rule option: its default and the sentence ``runlint rule`` shows for it."""
    return field(default=default, metadata={"help": help})


def doc_section(doc: str, title: str) -> str:
    """The text of section ``## title`` of a docstring (empty when it has none)."""
    match = re.search(rf"^## {re.escape(title)}\s*\n(.*?)(?=^## |\Z)", doc, re.M | re.S)
    return match.group(1).strip() if match else ""


class Rule:
    """Base class of every rule in ``rules/``.

    Subclasses set ``code`` (``RL`` + three digits), ``name`` (kebab-case), ``severity``,
    ``requires`` (schema names such as ``"steps.loss"`` or ``any_of(...)``; a run lacking one
    skips the rule with the reason) and ``Options`` (a dataclass whose fields are ``option``\\ s,
    overridable from ``[tool.runlint.RLxxx]``), and implement ``check(run)``. The class
    docstring is the rule's documentation: a summary line, then the ``DOC_SECTIONS``; its
    ``## Fix`` is the fix of a finding that names none of its own.
    """

    code: ClassVar[str]
    name: ClassVar[str]
    severity: ClassVar[Severity] = Severity.WARNING
    requires: ClassVar[tuple[str | AnyOf, ...]] = ()
    #: ``requires`` checked against the schema (set when the class is defined)
    needs: ClassVar[tuple[Need, ...]] = ()
    #: codes of rules whose problem can cause this one's (a learning rate far too high kills
    #: ReLUs, which stalls the updates): when both fire on a run and theirs appeared no later,
    #: this finding is reported as a consequence of theirs, with no fix of its own
    explained_by: ClassVar[tuple[str, ...]] = ()
    #: the ``## Fix`` section, as one line
    default_fix: ClassVar[str] = ""
    #: the rule judges how the run ended (a plateau never decayed, the last epochs' gap): it is
    #: not run on a run still training (live checking), only on a finished one
    whole_run: ClassVar[bool] = False
    #: a helper base class, not a rule (``class Base(Rule, abstract=True)``)
    abstract: ClassVar[bool] = True

    @dataclass
    class Options:
        pass

    def __init_subclass__(cls, abstract: bool = False, **kwargs: Any) -> None:
        """Check the new rule class (``class Base(Rule, abstract=True)``: a helper base that
        is not a rule itself, not checked and not in the catalog)."""
        super().__init_subclass__(**kwargs)
        cls.abstract = abstract
        if not abstract:
            _validate(cls)

    def __init__(self, options: Options | None = None, severity: Severity | None = None) -> None:
        self.options = options if options is not None else self.Options()
        if severity is not None:
            self.severity = severity  # type: ignore[misc]

    def missing(self, run: Run) -> list[str]:
        """The requirements this run lacks (empty when the rule can run)."""
        return [str(need) for need in self.needs if not run.has(need)]

    def applies(self, run: Run) -> str | None:
        """Why the rule does not apply to this run (its data is there but means something else,
        e.g. a regression loss for a classifier's rule), or ``None`` when it applies."""
        return None

    def check(self, run: Run) -> Iterator[Finding]:
        raise NotImplementedError

    def finding(self, run: Run, message: str, fix: str | None = None, **kwargs: Any) -> Finding:
        """A finding of this rule, at its configured severity unless ``severity`` is given, with
        the rule's documented fix unless ``fix`` is given."""
        kwargs.setdefault("severity", self.severity)
        return Finding(
            self.code,
            self.name,
            message=message,
            fix=self.default_fix if fix is None else fix,
            run=str(run.path),
            **kwargs,
        )


def _validate(cls: type[Rule]) -> None:
    """Check a rule class against the contract; set ``needs`` and ``default_fix``."""
    where = _where(cls)

    def fail(problem: str) -> RuleDefinitionError:
        return RuleDefinitionError(f"{where}: {problem}")

    code, name = getattr(cls, "code", None), getattr(cls, "name", None)
    if not isinstance(code, str) or not CODE_RE.match(code):
        raise fail(f"code must be 'RL' and three digits (like 'RL401'), got {code!r}")
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise fail(f"name must be kebab-case words (like 'dead-relu'), got {name!r}")
    doc = validate_common(cls, Rule, fail, "run")
    needs: list[Need] = []
    for need in cls.requires:
        if isinstance(need, AnyOf):
            needs.append(need)
        elif isinstance(need, str):
            try:
                needs.append(requirement(need))
            except SchemaError as exc:
                raise fail(f"requires {exc}") from None
        else:
            raise fail(f"requires holds {need!r}: use schema names or any_of(...)")
    cls.needs = tuple(needs)
    validate_options(cls, fail, doc)


def validate_common(
    cls: Any, base: Any, fail: Callable[[str], RuleDefinitionError], subject: str
) -> str:
    """The contract every kind of rule shares (``base`` is its base class, ``subject`` what its
    ``check`` takes): severity, ``check`` implemented, the docstring's sections in order,
    ``explained_by`` and ``requires`` tuples. Returns the docstring."""
    if not isinstance(cls.severity, Severity):
        raise fail(f"severity must be a Severity, got {cls.severity!r}")
    if cls.check is base.check:
        raise fail(f"it does not implement check({subject})")
    doc = inspect.getdoc(cls) or ""
    if cls.__doc__ is None or not doc.strip():
        raise fail("it has no docstring (a summary line, then its documentation sections)")
    missing = [s for s in DOC_SECTIONS if not doc_section(doc, s)]
    if missing:
        raise fail("its docstring lacks " + ", ".join(f"'## {s}'" for s in missing))
    order = [t for t in re.findall(r"^## (.+?)\s*$", doc, re.M) if t in DOC_SECTIONS]
    if order != list(DOC_SECTIONS):
        raise fail(f"its docstring sections must come in the order {', '.join(DOC_SECTIONS)}")
    if not isinstance(cls.explained_by, tuple) or not all(
        isinstance(c, str) and CODE_RE.match(c) and c != cls.code for c in cls.explained_by
    ):
        raise fail(f"explained_by must be a tuple of other rules' codes, got {cls.explained_by!r}")
    if not isinstance(cls.requires, tuple):
        raise fail(f"requires must be a tuple, got {type(cls.requires).__name__}")
    return doc


def validate_options(cls: Any, fail: Callable[[str], RuleDefinitionError], doc: str) -> None:
    """``Options`` is a dataclass whose every option has a default and help; set the rule's
    ``default_fix`` from its docstring's ``## Fix``."""
    options = cls.Options
    if not (isinstance(options, type) and dataclasses.is_dataclass(options)):
        raise fail("Options must be a @dataclass class")
    for f in dataclasses.fields(options):
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise fail(f"option {f.name!r} has no default")
        if not f.metadata.get("help"):
            raise fail(f"option {f.name!r} has no help: declare it with option(default, help)")
    cls.default_fix = " ".join(doc_section(doc, "Fix").replace("``", "").split())


def _where(cls: type) -> str:
    """``rules/rl401_update_ratio_off.py: UpdateRatioOff`` (the file that defines ``cls``)."""
    try:
        file = inspect.getsourcefile(cls) or cls.__module__
    except (TypeError, OSError):  # a class defined in `python -c` or a REPL has no file
        file = cls.__module__
    path = Path(file)
    shown = f"{path.parent.name}/{path.name}" if path.suffix == ".py" else file
    return f"{shown}: {cls.__name__}"
