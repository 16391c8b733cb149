"""``runlint rules`` (the catalog) and ``runlint rule CODE`` (one rule's page): thin commands
over ``runlint.docs``, which renders both."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, cast

from runlint.cli.flags import Command, CommandError, Flag

if TYPE_CHECKING:
    from runlint.check.rule import Rule

__all__ = ["RULE", "RULES"]


def _rules_flags() -> list[Flag]:
    from runlint.docs import CATALOG_FORMATS

    return [
        Flag(
            ("--format", "-f"),
            "text, markdown (the README's table) or json.",
            choices=CATALOG_FORMATS,
            default="text",
            dest="fmt",
        )
    ]


def _catalog_problems(errors: tuple[str, ...]) -> int:
    for problem in errors:
        print(f"runlint: error: {problem}", file=sys.stderr)
    return 2 if errors else 0


def list_rules(args: argparse.Namespace) -> int:
    from runlint import docs
    from runlint.check import engine
    from runlint.sweep.rule import discover as discover_sweep

    catalog = engine.discover()
    sweeps = discover_sweep()
    # the sweep rules (RL8xx, runlint sweep) have the run rules' class attributes
    rules = [*catalog.rules, *cast("tuple[type[Rule], ...]", sweeps.rules)]
    if args.fmt == "text":
        from rich.console import Console

        Console(highlight=False).print(docs.catalog_table(rules))
    else:
        sys.stdout.write(docs.render_catalog(rules, args.fmt))
    return _catalog_problems(tuple(dict.fromkeys([*catalog.errors, *sweeps.errors])))


def explain_rule(args: argparse.Namespace) -> int:
    from rich.console import Console

    from runlint import docs
    from runlint.check import engine
    from runlint.hints import suggest
    from runlint.sweep.rule import discover as discover_sweep

    catalog = engine.discover()
    sweeps = discover_sweep()
    rule = catalog.get(args.code) or cast("type[Rule] | None", sweeps.get(args.code))
    if rule is None:
        names = [*catalog.codes, *(r.name for r in catalog.rules)]
        names += [*sweeps.codes, *(r.name for r in sweeps.rules)]
        raise CommandError(f"unknown rule {args.code!r}{suggest(args.code, names)}")
    docs.print_rule(docs.rule_page(rule, example=True), Console(highlight=False))
    return 0


RULES = Command(
    "rules",
    "List the rule catalog: code, name, default severity, what it catches.",
    "",
    _rules_flags,
    list_rules,
)

RULE = Command(
    "rule",
    "Explain one rule: its documentation, options (with types and defaults), an example.",
    "",
    lambda: [Flag(("code",), "A rule code (RL101) or name (initial-loss-off).")],
    explain_rule,
)
