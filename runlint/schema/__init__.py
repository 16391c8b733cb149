"""The one home of every name a run holds: tables and columns, metadata keys, the file layout.

A rule names the data it needs as ``"table.column"``, ``"table"`` or ``"meta.key"``;
``requirement`` checks such a name against the schema (an unknown one is a ``SchemaError``
with a "did you mean"), and ``AnyOf`` says that one of several is enough.
"""

from __future__ import annotations

from dataclasses import dataclass

from runlint.hints import suggest
from runlint.schema.meta import META, MetaKey, Setup, parse_setup
from runlint.schema.tables import TABLES, ColumnSpec, TableSpec, view_columns

__all__ = [
    "META",
    "TABLES",
    "AnyOf",
    "ColumnSpec",
    "MetaKey",
    "Need",
    "Requirement",
    "SchemaError",
    "Setup",
    "TableSpec",
    "any_of",
    "parse_setup",
    "requirement",
]


class SchemaError(ValueError):
    """A name that the schema does not know; the message is one sentence."""


@dataclass(frozen=True)
class Requirement:
    """Data a rule needs: a table (``column`` empty), a column of a table's view, or a meta key."""

    table: str
    column: str = ""

    def __str__(self) -> str:
        return f"{self.table}.{self.column}" if self.column else self.table

    @property
    def spec(self) -> ColumnSpec | None:
        """The column's spec (None for a whole table or a meta key)."""
        if self.table == "meta" or not self.column:
            return None
        return view_columns(TABLES[self.table]).get(self.column)


@dataclass(frozen=True)
class AnyOf:
    """One of several alternatives is enough; each alternative is one or more requirements."""

    options: tuple[tuple[Requirement, ...], ...]

    def __str__(self) -> str:
        return " or ".join(" + ".join(map(str, option)) for option in self.options)


Need = Requirement | AnyOf


def requirement(name: str) -> Requirement:
    """The requirement named ``name`` (``"steps.loss"``, ``"params"``, ``"meta.num_classes"``).

    A column of an open table (``steps``, ``epochs``) must still be a column the schema names:
    a typo never silently skips a rule.
    """
    table, _, column = name.partition(".")
    if table == "meta":
        if column not in META:
            raise SchemaError(
                f"unknown metadata key {name!r}{suggest(column, list(META), 'meta.')}"
            )
        return Requirement("meta", column)
    if table not in TABLES:
        raise SchemaError(f"unknown table {table!r} in {name!r}{suggest(table, [*TABLES, 'meta'])}")
    if column and column not in view_columns(TABLES[table]):
        known = list(view_columns(TABLES[table]))
        raise SchemaError(
            f"{table!r} has no column {column!r} (in {name!r}){suggest(column, known, table + '.')}"
        )
    return Requirement(table, column)


def any_of(*options: str | tuple[str, ...]) -> AnyOf:
    """``AnyOf`` from names: ``any_of("meta.params", "params.update_norm")``, or tuples of names
    that are needed together: ``any_of(("epochs.train_acc", "epochs.val_acc"), ...)``."""
    parsed = tuple(
        tuple(requirement(n) for n in ((o,) if isinstance(o, str) else o)) for o in options
    )
    return AnyOf(parsed)
