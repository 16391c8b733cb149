"""Checking runs: what a rule is, the catalog, configuration, and the engine."""

from runlint.check.rule import Finding, Rule, Severity

__all__ = ["Finding", "Rule", "Severity"]
