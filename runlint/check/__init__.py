"""Checking runs: what a rule is, the catalog, configuration, and the engine.

A rule file needs ``from runlint.check import Finding, Rule, Severity, option`` (and
``any_of`` for alternatives in ``requires``).
"""

from runlint.check.rule import (
    Finding,
    NotJudged,
    Rule,
    RuleDefinitionError,
    Severity,
    any_of,
    option,
)

__all__ = ["Finding", "NotJudged", "Rule", "RuleDefinitionError", "Severity", "any_of", "option"]
