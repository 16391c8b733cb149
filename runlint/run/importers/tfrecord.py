"""TensorBoard event files without TensorFlow: TFRecord framing and a tiny protobuf decoder.

A TFRecord is ``uint64 length, uint32 masked_crc32c(length), data, uint32 masked_crc32c(data)``
(little endian). ``data`` is a serialized ``tensorflow.Event``; its ``summary`` holds ``Value``s
whose scalar is a ``simple_value`` (torch.utils.tensorboard, tensorboardX) or a one-element
``tensor`` (TF2's ``tf.summary.scalar``). Every record is read (no sampling). Reading stops
cleanly at a truncated last record (a live or killed run) and at a record whose length checksum
fails (nothing after it can be framed); a scalar record whose data checksum fails is dropped.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

__all__ = ["EventScalars", "crc32c", "masked_crc32c", "read_scalars"]

_U64 = struct.Struct("<Q")
_F32 = struct.Struct("<f")
_F64 = struct.Struct("<d")


def _crc_table() -> np.ndarray:
    table = np.zeros(256, dtype=np.uint32)
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table[i] = crc
    return table


_TABLE = _crc_table()
_TABLE_LIST = [int(x) for x in _TABLE]


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli) of ``data``."""
    crc = 0xFFFFFFFF
    table = _TABLE_LIST
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    """The masked CRC TFRecord stores: rotate right by 15 and add a constant."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _masked_crc_rows(rows: np.ndarray) -> np.ndarray:
    """Masked CRC-32C of each row of a 2-D uint8 array, vectorized over rows."""
    crc = np.full(rows.shape[0], 0xFFFFFFFF, dtype=np.uint32)
    for i in range(rows.shape[1]):
        crc = _TABLE[(crc ^ rows[:, i]) & 0xFF] ^ (crc >> np.uint32(8))
    crc = (crc ^ np.uint32(0xFFFFFFFF)).astype(np.uint64)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _stored_u32(buf: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    idx = offsets[:, None] + np.arange(4)
    return buf[idx].astype(np.uint64) @ (np.uint64(1) << (np.arange(4, dtype=np.uint64) * 8))


def _crc_ok(buf: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Whether each span ``buf[start:start+length]`` matches the masked CRC stored after it.

    Vectorized over spans: spans are bucketed by length (powers of two) and a bucket's bytes are
    fed column by column, each span stopping at its own length.
    """
    ok = np.ones(len(starts), dtype=bool)
    if not len(starts):
        return ok
    buckets = np.ceil(np.log2(np.maximum(lengths, 1))).astype(np.int64)
    last = len(buf) - 1
    for bucket in np.unique(buckets):
        sel = np.flatnonzero(buckets == bucket)
        span, lens = starts[sel], lengths[sel]
        crc = np.full(len(sel), 0xFFFFFFFF, dtype=np.uint32)
        for i in range(int(lens.max())):
            col = buf[np.minimum(span + i, last)]
            step = _TABLE[(crc ^ col) & 0xFF] ^ (crc >> np.uint32(8))
            crc = np.where(i < lens, step, crc)
        crc64 = (crc ^ np.uint32(0xFFFFFFFF)).astype(np.uint64)
        masked = (((crc64 >> 15) | (crc64 << 17)) + 0xA282EAD8) & 0xFFFFFFFF
        ok[sel] = masked == _stored_u32(buf, span + lens)
    return ok


_CHECK_ALL_BELOW = 1024  # records up to this size are all checksummed; longer ones if used


@dataclass
class EventScalars:
    """Scalars read from event files: parallel lists, plus what was wrong with the input."""

    tags: list[str] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    records: int = 0
    truncated: bool = False  # the last record was cut short (a live or killed run)
    damaged: int = 0  # records dropped: checksum or decoding failed
    stopped_at: int | None = None  # byte offset of a record whose length checksum failed


def read_scalars(data: bytes, out: EventScalars | None = None) -> EventScalars:
    """Every scalar in one event file's bytes, appended to ``out``."""
    out = out if out is not None else EventScalars()
    offsets, lengths, tail = _frame(data)
    truncated = tail != len(data)
    buf = np.frombuffer(data, dtype=np.uint8)
    if truncated and tail + 12 <= len(data):  # a cut record is only trusted if its header is
        header = np.frombuffer(data, dtype=np.uint8, count=12, offset=tail)
        if _masked_crc_rows(header[None, :8])[0] != _stored_u32(header, np.array([8]))[0]:
            out.stopped_at, truncated = tail, False
    if len(offsets):
        header_ok = _masked_crc_rows(buf[offsets[:, None] + np.arange(8)]) == _stored_u32(
            buf, offsets + 8
        )
        if not header_ok.all():
            first_bad = int(np.argmin(header_ok))
            out.stopped_at = int(offsets[first_bad])
            offsets, lengths, truncated = offsets[:first_bad], lengths[:first_bad], False
    out.truncated = out.truncated or truncated
    out.records += len(offsets)
    short = lengths <= _CHECK_ALL_BELOW
    ok = np.ones(len(offsets), dtype=bool)
    ok[short] = _crc_ok(buf, offsets[short] + 12, lengths[short])
    out.damaged += int((~ok).sum())
    starts, sizes = offsets[ok] + 12, lengths[ok]
    _decode_records(
        data, starts, sizes, out, lambda i: _decode_slow(data, buf, starts, sizes, i, out)
    )
    return out


def _decode_slow(
    data: bytes, buf: np.ndarray, starts: np.ndarray, sizes: np.ndarray, i: int, out: EventScalars
) -> None:
    """Any event, with the full decoder; a damaged one is counted and leaves nothing behind."""
    start, size = int(starts[i]), int(sizes[i])
    before = len(out.tags)
    try:
        _decode_event(data, start, start + size, out)
    except (IndexError, ValueError, struct.error, UnicodeDecodeError):
        out.damaged += 1
        _truncate(out, before)
        return
    long_with_scalars = len(out.tags) > before and size > _CHECK_ALL_BELOW
    if long_with_scalars and not _crc_ok(buf, starts[i : i + 1], sizes[i : i + 1])[0]:
        out.damaged += 1
        _truncate(out, before)


# The layout torch.utils.tensorboard and tensorboardX write for one ``add_scalar``:
# Event{wall_time, step, summary: Summary{value: Value{tag, simple_value}}}, short lengths.
_SCALAR_EVENT = re.compile(
    rb"\x09(.{8})(?:\x10([\x80-\xff]{0,9}[\x00-\x7f]))?"  # wall_time, step
    rb"\x2a([\x00-\x7f])\x0a([\x00-\x7f])\x0a([\x00-\x7f])",  # summary, value, tag lengths
    re.DOTALL,
)


def _decode_records(
    data: bytes,
    starts: np.ndarray,
    lengths: np.ndarray,
    out: EventScalars,
    slow: Callable[[int], None],
) -> None:
    """Decode records in file order: one-``add_scalar`` events here, the others by ``slow``."""
    tags: dict[bytes, str] = {}
    match = _SCALAR_EVENT.match
    f64, f32 = _F64.unpack, _F32.unpack_from
    out_tags, out_steps, out_times, out_values = out.tags, out.steps, out.times, out.values
    for index, (pos, end) in enumerate(
        zip(starts.tolist(), (starts + lengths).tolist(), strict=True)
    ):
        m = match(data, pos, end)
        if m is None:
            slow(index)
            continue
        tag_start = m.end()
        tag_end = tag_start + m[5][0]
        if (
            tag_end + 5 != end
            or data[tag_end] != 0x15
            or m.start(4) + 1 + m[4][0] != end
            or m.start(3) + 1 + m[3][0] != end
        ):
            slow(index)
            continue
        raw = data[tag_start:tag_end]
        tag = tags.get(raw)
        if tag is None:
            try:
                tag = tags[raw] = raw.decode("utf-8")
            except UnicodeDecodeError:
                slow(index)
                continue
        step = 0
        varint = m[2]
        if varint is not None:
            for shift, byte in enumerate(varint):
                step |= (byte & 0x7F) << (7 * shift)
            if step >= 1 << 63:
                step -= 1 << 64
        out_tags.append(tag)
        out_steps.append(step)
        out_times.append(f64(m[1])[0])
        out_values.append(f32(data, tag_end + 1)[0])


def _truncate(out: EventScalars, size: int) -> None:
    del out.tags[size:], out.steps[size:], out.times[size:], out.values[size:]


def _frame(data: bytes) -> tuple[np.ndarray, np.ndarray, int]:
    """Offsets and data lengths of the complete records, and where the complete ones end."""
    offsets: list[int] = []
    lengths: list[int] = []
    pos, end = 0, len(data)
    unpack = _U64.unpack_from
    while pos + 12 <= end:
        (length,) = unpack(data, pos)
        nxt = pos + 16 + length
        if nxt > end:
            break
        offsets.append(pos)
        lengths.append(length)
        pos = nxt
    return np.asarray(offsets, dtype=np.int64), np.asarray(lengths, dtype=np.int64), pos


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    byte = data[pos]
    if byte < 0x80:
        return byte, pos + 1
    result, shift = byte & 0x7F, 7
    while True:
        pos += 1
        byte = data[pos]
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos + 1
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _skip(data: bytes, pos: int, wire: int) -> int:
    if wire == 0:
        return _varint(data, pos)[1]
    if wire == 1:
        return pos + 8
    if wire == 2:
        length, pos = _varint(data, pos)
        return pos + length
    if wire == 5:
        return pos + 4
    raise ValueError(f"unsupported wire type {wire}")


def _decode_event(data: bytes, pos: int, end: int, out: EventScalars) -> None:
    """Event: wall_time = 1 (double), step = 2 (int64), summary = 5 (Summary)."""
    wall, step = 0.0, 0
    summaries: list[tuple[int, int]] = []
    while pos < end:
        key, pos = _varint(data, pos)
        field_no, wire = key >> 3, key & 7
        if field_no == 1 and wire == 1:
            (wall,) = _F64.unpack_from(data, pos)
            pos += 8
        elif field_no == 2 and wire == 0:
            step, pos = _varint(data, pos)
            if step >= 1 << 63:
                step -= 1 << 64
        elif field_no == 5 and wire == 2:
            length, pos = _varint(data, pos)
            summaries.append((pos, pos + length))
            pos += length
        else:
            pos = _skip(data, pos, wire)
    if pos != end:
        raise ValueError("record overruns its length")
    for start, stop in summaries:
        _decode_summary(data, start, stop, step, wall, out)


def _decode_summary(
    data: bytes, pos: int, end: int, step: int, wall: float, out: EventScalars
) -> None:
    """Summary: value = 1 (repeated Value)."""
    while pos < end:
        key, pos = _varint(data, pos)
        if key == 0x0A:  # field 1, length-delimited
            length, pos = _varint(data, pos)
            stop = pos + length
            if stop > end:
                raise ValueError("value overruns its summary")
            tag, value = _decode_value(data, pos, stop)
            if tag is not None and value is not None:
                out.tags.append(tag)
                out.steps.append(step)
                out.times.append(wall)
                out.values.append(value)
            pos = stop
        else:
            pos = _skip(data, pos, key & 7)
    if pos != end:
        raise ValueError("summary overruns its length")


def _decode_value(data: bytes, pos: int, end: int) -> tuple[str | None, float | None]:
    """Value: tag = 1, simple_value = 2 (float), tensor = 8 (TensorProto); others skipped."""
    tag: str | None = None
    value: float | None = None
    while pos < end:
        key, pos = _varint(data, pos)
        if key == 0x0A:  # tag
            length, pos = _varint(data, pos)
            tag = data[pos : pos + length].decode("utf-8")
            pos += length
        elif key == 0x15:  # simple_value, fixed32
            (value,) = _F32.unpack_from(data, pos)
            pos += 4
        elif key == 0x42:  # tensor
            length, pos = _varint(data, pos)
            if value is None:
                value = _decode_tensor(data, pos, pos + length)
            pos += length
        else:
            pos = _skip(data, pos, key & 7)
    return tag, value


# TensorProto dtypes: struct format of one element of tensor_content.
_CONTENT = {1: "<f", 2: "<d", 3: "<i", 4: "<B", 5: "<h", 6: "<b", 9: "<q", 10: "<?", 19: "<e"}
_CONTENT.update({17: "<H", 22: "<I", 23: "<Q"})


def _decode_tensor(data: bytes, pos: int, end: int) -> float | None:
    """A one-element numeric TensorProto's value; None for anything else (text, histograms)."""
    dtype, numel = 0, 1
    content: bytes | None = None
    vals: list[float] = []
    while pos < end:
        key, pos = _varint(data, pos)
        field_no, wire = key >> 3, key & 7
        if field_no == 1 and wire == 0:
            dtype, pos = _varint(data, pos)
        elif field_no == 2 and wire == 2:
            length, pos = _varint(data, pos)
            numel = _shape_numel(data, pos, pos + length)
            pos += length
        elif field_no == 4 and wire == 2:
            length, pos = _varint(data, pos)
            content = data[pos : pos + length]
            pos += length
        elif field_no in (5, 6, 7, 10, 11, 13, 16, 17):
            pos = _repeated(data, pos, field_no, wire, vals)
        else:
            pos = _skip(data, pos, wire)
    if numel != 1 or dtype in (0, 7):  # DT_INVALID, DT_STRING
        return None
    if content is not None:
        if dtype == 14:  # bfloat16: the high half of a float32
            return float(_F32.unpack(b"\0\0" + content[:2])[0]) if len(content) >= 2 else None
        fmt = _CONTENT.get(dtype)
        if fmt is None or len(content) != struct.calcsize(fmt):
            return None
        return float(struct.unpack(fmt, content)[0])
    return vals[0] if len(vals) == 1 else None


def _repeated(data: bytes, pos: int, field_no: int, wire: int, vals: list[float]) -> int:
    """float_val 5, double_val 6, int_val 7, int64_val 10, bool_val 11, half_val 13, uint 16/17."""
    if wire == 2:  # packed
        length, pos = _varint(data, pos)
        stop = pos + length
        while pos < stop:
            pos = _one(data, pos, field_no, vals)
        return stop
    return _one(data, pos, field_no, vals)


def _one(data: bytes, pos: int, field_no: int, vals: list[float]) -> int:
    if field_no == 5:
        vals.append(_F32.unpack_from(data, pos)[0])
        return pos + 4
    if field_no == 6:
        vals.append(_F64.unpack_from(data, pos)[0])
        return pos + 8
    raw, pos = _varint(data, pos)
    if field_no == 13:  # half_val holds the 16 bits of an IEEE half
        vals.append(struct.unpack("<e", (raw & 0xFFFF).to_bytes(2, "little"))[0])
    elif field_no in (7, 10) and raw >= 1 << 63:
        vals.append(float(raw - (1 << 64)))
    else:
        vals.append(float(raw))
    return pos


def _shape_numel(data: bytes, pos: int, end: int) -> int:
    """TensorShapeProto: dim = 2 (Dim: size = 1); unknown_rank = 3. -1 when unknown."""
    numel = 1
    while pos < end:
        key, pos = _varint(data, pos)
        if key == 0x12:
            length, pos = _varint(data, pos)
            stop = pos + length
            size = 1
            while pos < stop:
                dkey, pos = _varint(data, pos)
                if dkey == 0x08:
                    size, pos = _varint(data, pos)
                else:
                    pos = _skip(data, pos, dkey & 7)
            numel *= size
        elif key == 0x18:
            unknown, pos = _varint(data, pos)
            if unknown:
                return -1
        else:
            pos = _skip(data, pos, key & 7)
    return numel
