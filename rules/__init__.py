"""The rule catalog: one module per rule, discovered by ``runlint.engine`` (no registry)."""
