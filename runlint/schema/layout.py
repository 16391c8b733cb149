"""On-disk layout of a run directory (see docs/format.md): names shared by writer and loader."""

from __future__ import annotations

import re

from runlint.schema.tables import TABLES as _TABLE_SPECS

FORMAT_NAME = "runlint-run"
FORMAT_VERSION = 1

META_FILE = "meta.json"
PARTS_DIR = "parts"

#: Tables a recorder writes, in order (their columns: ``runlint.schema.tables``).
TABLES = tuple(_TABLE_SPECS)

_PART_RE = re.compile(r"^(?P<table>[a-z]+)-r(?P<rank>\d+)-(?P<seq>\d+)\.parquet$")
_COMPACT_RE = re.compile(r"^(?P<table>[a-z]+)-r(?P<rank>\d+)\.parquet$")


def part_name(table: str, rank: int, seq: int) -> str:
    """File name of one flushed part, inside ``parts/``."""
    return f"{table}-r{rank}-{seq:06d}.parquet"


def compact_name(table: str, rank: int) -> str:
    """File name of a table compacted on close, in the run directory."""
    return f"{table}-r{rank}.parquet"


def parse_part(name: str) -> tuple[str, int, int] | None:
    m = _PART_RE.match(name)
    return (m["table"], int(m["rank"]), int(m["seq"])) if m else None


def parse_compact(name: str) -> tuple[str, int] | None:
    m = _COMPACT_RE.match(name)
    return (m["table"], int(m["rank"])) if m else None
