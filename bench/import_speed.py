"""Read speed of the TensorBoard importer on a 100k-step event file.

Writes ``--steps`` steps (one ``train/loss`` scalar each, plus ``train/learning_rate`` every
step and ``val/loss``/``val/acc`` every 1,000) with ``torch.utils.tensorboard``'s writer when
it is installed, else with runlint's own framing, then times ``runlint.load_run`` on it
(median of ``--repeat``). Run: ``python bench/import_speed.py``.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import struct
import tempfile
import time
from pathlib import Path

import runlint
from runlint.run.importers.tfrecord import masked_crc32c, read_scalars


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _event(step: int, tag: str, value: float) -> bytes:
    tag_b = tag.encode()
    value_msg = b"\x0a" + _varint(len(tag_b)) + tag_b + b"\x15" + struct.pack("<f", value)
    summary = b"\x0a" + _varint(len(value_msg)) + value_msg
    return (
        b"\x09"
        + struct.pack("<d", 1.7e9 + step)
        + b"\x10"
        + _varint(step)
        + b"\x2a"
        + _varint(len(summary))
        + summary
    )


def _record(data: bytes) -> bytes:
    header = struct.pack("<Q", len(data))
    return (
        header
        + struct.pack("<I", masked_crc32c(header))
        + data
        + struct.pack("<I", masked_crc32c(data))
    )


def write(folder: Path, steps: int) -> str:
    """Write the event file; returns which writer wrote it."""
    if importlib.util.find_spec("tensorboard") is not None:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(folder), max_queue=10_000, flush_secs=3600)
        for step in range(steps):
            writer.add_scalar("train/loss", 2.3 / (1 + step / 1000), step)
            writer.add_scalar("train/learning_rate", 0.1, step)
            if step % 1000 == 999:
                writer.add_scalar("val/loss", 2.0, step)
                writer.add_scalar("val/acc", 0.5, step)
        writer.close()
        return "torch.utils.tensorboard.SummaryWriter"
    with open(folder / "events.out.tfevents.0.bench", "wb") as f:
        for step in range(steps):
            f.write(_record(_event(step, "train/loss", 2.3 / (1 + step / 1000))))
            f.write(_record(_event(step, "train/learning_rate", 0.1)))
            if step % 1000 == 999:
                f.write(_record(_event(step, "val/loss", 2.0)))
                f.write(_record(_event(step, "val/acc", 0.5)))
    return "runlint's own framing"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        writer = write(folder, args.steps)
        (file,) = folder.glob("events.out.tfevents.*")
        size = file.stat().st_size
        data = file.read_bytes()
        decode, load = [], []
        for _ in range(args.repeat):
            start = time.perf_counter()
            scalars = read_scalars(data)
            decode.append(time.perf_counter() - start)
            start = time.perf_counter()
            run = runlint.load_run(folder)
            load.append(time.perf_counter() - start)
        assert len(run.steps) == args.steps and scalars.damaged == 0
        records, median = scalars.records, statistics.median(load)
        print(f"writer: {writer}")
        print(f"file: {size / 1e6:.1f} MB, {records:,} records, {len(scalars.tags):,} scalars")
        print(f"decode (framing, checksums, protobuf): {statistics.median(decode):.2f} s")
        print(
            f"load_run (decode + tables): {median:.2f} s = {args.steps / median:,.0f} steps/s, "
            f"{records / median:,.0f} records/s"
        )


if __name__ == "__main__":
    main()
