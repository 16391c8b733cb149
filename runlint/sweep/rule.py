"""What a sweep rule is: like a ``runlint.check.Rule``, but it judges a ``Search``, not a run.

A sweep rule lives in ``rules/`` beside the run rules (one file each, code ``RL8xx``) and is a
subclass of ``SweepRule``: a ``code``, a kebab-case ``name``, a ``severity``, what it
``requires`` of a search (``SEARCH_NEEDS``), ``Options`` declared with ``option(default,
help)`` and ``check(search)`` yielding ``Finding``\\ s. It is checked when its class is defined,
with the run rules' contract (docstring sections, options with help, a code in its family):
a mistake is one ``RuleDefinitionError`` naming its file.

The two catalogs never mix: ``runlint check`` collects ``Rule`` subclasses, ``runlint sweep``
collects ``SweepRule`` subclasses (``discover``), both from ``runlint.rules``. Configuration is
shared: ``[tool.runlint.RL8xx]`` tables hold a sweep rule's options and severity, ``select``
and ``ignore`` name rules of both catalogs.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any, ClassVar

from runlint.check.config import Config, ConfigError, parse_severity
from runlint.check.engine import (
    CODE_PREFIX_RE,
    RULES_PACKAGE,
    Catalog,
    build_options,
    import_rule_modules,
    select_rules,
)
from runlint.check.rule import (
    CODE_RE,
    NAME_RE,
    Finding,
    RuleDefinitionError,
    Severity,
    _where,
    validate_common,
    validate_options,
)
from runlint.hints import suggest
from runlint.sweep.model import Search

__all__ = [
    "FAMILY",
    "SEARCH_NEEDS",
    "SweepCatalog",
    "SweepRule",
    "configure",
    "discover",
    "split_config",
    "split_selectors",
]

#: The code family of sweep rules.
FAMILY = "RL8"

#: What a sweep rule may require of a search, and how to tell it is there.
SEARCH_NEEDS: dict[str, str] = {
    "trials": "trial with a finite objective",
    "space": "searched hyperparameter (one that takes two values or more)",
    "space.numeric": "numeric searched hyperparameter",
    "curves": "objective per epoch in any trial",
    "epochs": "epoch count in any trial",
    "stages": "second stage (studies, folders given, or trials naming their stage)",
    "best.run": "run directory of the best trial (recorded with runlint.record)",
}


class SweepRule:
    """Base class of the sweep rules in ``rules/`` (see the module's docstring)."""

    code: ClassVar[str]
    name: ClassVar[str]
    severity: ClassVar[Severity] = Severity.WARNING
    requires: ClassVar[tuple[str, ...]] = ()
    #: the names of ``requires``, checked (set when the class is defined)
    needs: ClassVar[tuple[str, ...]] = ()
    explained_by: ClassVar[tuple[str, ...]] = ()
    default_fix: ClassVar[str] = ""
    abstract: ClassVar[bool] = True

    @dataclass
    class Options:
        pass

    def __init_subclass__(cls, abstract: bool = False, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.abstract = abstract
        if not abstract:
            _validate(cls)

    def __init__(self, options: Any = None, severity: Severity | None = None) -> None:
        self.options = options if options is not None else self.Options()
        if severity is not None:
            self.severity = severity  # type: ignore[misc]

    def missing(self, search: Search) -> list[str]:
        """Why the search lacks what the rule requires (empty when it can run)."""
        return [f"no {SEARCH_NEEDS[n]}" for n in self.needs if not has(search, n)]

    def check(self, search: Search) -> Iterator[Finding]:
        raise NotImplementedError

    def finding(
        self, search: Search, message: str, fix: str | None = None, **kwargs: Any
    ) -> Finding:
        """A finding about the search, at the rule's severity unless ``severity`` is given."""
        kwargs.setdefault("severity", self.severity)
        return Finding(
            self.code,
            self.name,
            message=message,
            fix=self.default_fix if fix is None else fix,
            run=search.location,
            **kwargs,
        )


def has(search: Search, need: str) -> bool:
    """Whether ``search`` holds what ``need`` (a ``SEARCH_NEEDS`` key) names."""
    judged = search.judged
    if need == "trials":
        return bool(judged)
    if need == "space":
        return bool(search.space)
    if need == "space.numeric":
        return any(d.numeric for d in search.space.values())
    if need == "curves":
        return any(t.curve for t in judged)
    if need == "epochs":
        return any(t.epochs for t in judged)
    if need == "stages":
        return len(search.stages) >= 2
    if need == "best.run":
        best = search.best
        return best is not None and best.run is not None
    raise KeyError(need)


def _validate(cls: type[SweepRule]) -> None:
    where = _where(cls)

    def fail(problem: str) -> RuleDefinitionError:
        return RuleDefinitionError(f"{where}: {problem}")

    code, name = getattr(cls, "code", None), getattr(cls, "name", None)
    if not isinstance(code, str) or not CODE_RE.match(code) or not code.startswith(FAMILY):
        raise fail(f"a sweep rule's code is {FAMILY} and two digits (like 'RL802'), got {code!r}")
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise fail(f"name must be kebab-case words (like 'best-on-border'), got {name!r}")
    doc = validate_common(cls, SweepRule, fail, "search")
    for need in cls.requires:
        if not isinstance(need, str) or need not in SEARCH_NEEDS:
            raise fail(
                f"requires {need!r}, which a search does not offer"
                + suggest(str(need), list(SEARCH_NEEDS))
            )
    cls.needs = tuple(cls.requires)
    validate_options(cls, fail, doc)


@dataclass(frozen=True)
class SweepCatalog:
    """Every sweep rule found, by code, and the modules that could not be loaded."""

    rules: tuple[type[SweepRule], ...]
    errors: tuple[str, ...] = ()

    def get(self, code_or_name: str) -> type[SweepRule] | None:
        key = code_or_name.strip()
        return next((r for r in self.rules if r.code == key.upper() or r.name == key.lower()), None)

    @property
    def codes(self) -> list[str]:
        return [r.code for r in self.rules]


@lru_cache(maxsize=4)
def discover(package: str = RULES_PACKAGE) -> SweepCatalog:
    """Import every module of ``package`` and collect its sweep rules (a module that fails to
    import is ``runlint check``'s error to report as well: it is listed here too)."""
    modules, imported = import_rule_modules(package)
    found: dict[str, type[SweepRule]] = {}
    errors = list(imported)
    for module in modules:
        for obj in vars(module).values():
            if (
                inspect.isclass(obj)
                and issubclass(obj, SweepRule)
                and obj.__module__ == module.__name__
                and not obj.abstract
            ):
                other = found.get(obj.code)
                if other is not None and other is not obj:
                    errors.append(f"{module.__name__}: {obj.__name__} reuses code {obj.code}")
                    continue
                found[obj.code] = obj
    return SweepCatalog(tuple(found[c] for c in sorted(found)), tuple(errors))


def names_sweep(tokens: Sequence[str], catalog: SweepCatalog) -> bool:
    """Whether any selector names a sweep rule (ALL, an ``RL8`` prefix, a sweep rule's name)."""
    for token in tokens:
        upper = token.upper()
        if token == "ALL" or upper in ("RL", FAMILY) or upper.startswith(FAMILY):
            return True
        if catalog.get(token) is not None:
            return True
    return False


def configure(
    catalog: SweepCatalog,
    config: Config,
    select: Sequence[str] | None = None,
    ignore: Sequence[str] = (),
) -> list[SweepRule]:
    """Sweep rule instances: ``[tool.runlint.RL8xx]`` tables applied, ``select``/``ignore``
    (command line over config) as for ``runlint check``. A ``select`` that names no sweep rule
    (``select = ["RL2"]``, meant for ``runlint check``) leaves every sweep rule selected."""
    built: dict[str, SweepRule] = {}
    for code, table in config.sweep_rules.items():
        rule = catalog.get(code)
        if rule is None or rule.code != code:
            raise ConfigError(
                f"{config.where}: unknown sweep rule [tool.runlint.{code}]"
                + suggest(code, catalog.codes)
            )
        table = dict(table)
        severity = table.pop("severity", None)
        sev = (
            parse_severity(severity, f"{config.where}: {code}.severity")
            if severity is not None
            else None
        )
        built[code] = rule(build_options(rule, table, config.where), sev)  # type: ignore[arg-type]
    chosen_select = select if select else config.select
    if chosen_select and not names_sweep(chosen_select, catalog):
        chosen_select = None
    chosen = select_rules(
        catalog,  # type: ignore[arg-type]
        chosen_select,
        [*config.ignore, *ignore],
    )
    return [built.get(r.code) or r() for r in chosen]  # type: ignore[misc]


def split_selectors(
    tokens: Sequence[str] | None, catalog: Catalog, sweeps: SweepCatalog, where: str
) -> tuple[list[str] | None, list[str] | None]:
    """Selectors split into those naming run rules and those naming sweep rules (``ALL`` and
    ``RL`` name both); ``None`` stays ``None``. An unknown selector is a ``ConfigError``."""
    if tokens is None:
        return None, None
    run: list[str] = []
    sweep: list[str] = []
    run_names = {r.name for r in catalog.rules}
    sweep_names = {r.name for r in sweeps.rules}
    for token in tokens:
        upper = token.upper()
        if token == "ALL" or upper == "RL":
            run.append(token)
            sweep.append(token)
        elif CODE_PREFIX_RE.match(upper):
            (sweep if upper.startswith(FAMILY) else run).append(token)
        elif token.lower() in sweep_names:
            sweep.append(token)
        elif token.lower() in run_names:
            run.append(token)
        else:
            known = [*catalog.codes, *sweeps.codes, *run_names, *sweep_names, "ALL"]
            raise ConfigError(f"{where}: unknown rule selector {token!r}{suggest(token, known)}")
    return run, sweep


def split_config(cfg: Config, catalog: Catalog, sweeps: SweepCatalog) -> tuple[Config, Config]:
    """The config as the run rules see it and as the sweep rules see it: each with the
    selectors that name its own catalog. A ``select`` naming none of a catalog's rules leaves
    that catalog's rules all selected."""
    run_sel, sweep_sel = split_selectors(cfg.select, catalog, sweeps, cfg.where)
    run_ign, sweep_ign = split_selectors(cfg.ignore, catalog, sweeps, cfg.where)
    run_cfg = replace(cfg, select=run_sel or None, ignore=run_ign or [])
    sweep_cfg = replace(cfg, select=sweep_sel or None, ignore=sweep_ign or [])
    return run_cfg, sweep_cfg
