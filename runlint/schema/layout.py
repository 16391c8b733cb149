"""On-disk layout of a run directory (see docs/format.md): names shared by writer and loader."""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from typing import TypeVar

from runlint.schema.tables import TABLES as _TABLE_SPECS

FORMAT_NAME = "runlint-run"
FORMAT_VERSION = 1

META_FILE = "meta.json"
PARTS_DIR = "parts"
#: What a live check (``runlint.record(..., check=True)``) learnt while the run trained: one
#: JSON event per line (a finding first seen, its severity changed, withdrawn).
FINDINGS_FILE = "findings.jsonl"

#: With a live check on (``check=``), the recorder also flushes after these step counts (each
#: one that comes before its next regular flush): a broken setup shows in a run's first hundred
#: steps, and the check judges only what a flush put on disk. Five small flushes at the start.
LIVE_EARLY_FLUSHES = (25, 50, 100, 200, 400)


def next_flush(step: int, flush_every: int, *, live: bool) -> int:
    """The step count after which a recorder at ``step`` flushes next by its step schedule
    (``log_epoch``, ``flush_secs`` and close flush besides)."""
    later = step + flush_every
    if live:
        for mark in LIVE_EARLY_FLUSHES:
            if step < mark < later:
                return mark
    return later


#: Tables a recorder writes, in order (their columns: ``runlint.schema.tables``).
TABLES = tuple(_TABLE_SPECS)

#: Key of the Parquet (Arrow schema) metadata of a part file that names every table of its
#: flush, comma-separated: a flush counts only once all of them are on disk. Part files
#: without it (written before this key existed) always count.
FLUSH_KEY = b"runlint.flush"

_Part = TypeVar("_Part")

_PART_RE = re.compile(r"^(?P<table>[a-z]+)-r(?P<rank>\d+)-(?P<seq>\d+)\.parquet$")
_COMPACT_RE = re.compile(r"^(?P<table>[a-z]+)-r(?P<rank>\d+)\.parquet$")
_LOCK_RE = re.compile(r"^\.runlint-r(?P<rank>\d+)\.lock$")


def part_name(table: str, rank: int, seq: int) -> str:
    """File name of one flushed part, inside ``parts/``."""
    return f"{table}-r{rank}-{seq:06d}.parquet"


def compact_name(table: str, rank: int) -> str:
    """File name of a table compacted on close, in the run directory."""
    return f"{table}-r{rank}.parquet"


def lock_name(rank: int) -> str:
    """File name of the lock a rank's writer holds for the life of its recording."""
    return f".runlint-r{rank}.lock"


def parse_part(name: str) -> tuple[str, int, int] | None:
    m = _PART_RE.match(name)
    return (m["table"], int(m["rank"]), int(m["seq"])) if m else None


def parse_compact(name: str) -> tuple[str, int] | None:
    m = _COMPACT_RE.match(name)
    return (m["table"], int(m["rank"])) if m else None


def parse_lock(name: str) -> int | None:
    m = _LOCK_RE.match(name)
    return int(m["rank"]) if m else None


def flush_tables(metadata: Mapping[bytes, bytes] | None) -> list[str] | None:
    """The tables of a part file's flush, from its schema metadata (``None``: not recorded)."""
    value = (metadata or {}).get(FLUSH_KEY)
    if value is None:
        return None
    return [t for t in value.decode("utf-8", "replace").split(",") if t]


def committed(
    flushes: Mapping[tuple[int, int], Mapping[str, _Part]],
    compacted: Collection[tuple[str, int]],
    tables_of: Callable[[_Part], list[str] | None],
) -> set[tuple[int, int]]:
    """The flushes, ``(rank, seq) -> {table: part}``, whose every table is on disk.

    A flush's tables are named in each of its parts (``tables_of(part)``, ``flush_tables`` of
    its footer); one of them counts as present when its part is there or the rank's compacted
    file of that table is (compaction includes every complete flush). A flush whose parts do
    not name their tables (an older writer) counts as it is.
    """
    done = set()
    for (rank, seq), parts in flushes.items():
        expected = tables_of(next(iter(parts.values())))
        if expected is None or all(t in parts or (t, rank) in compacted for t in expected):
            done.add((rank, seq))
    return done
