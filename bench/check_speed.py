"""How fast ``runlint check`` is: runs/second, peak memory, and one small run's wall time.

    python bench/check_speed.py [--runs 200] [--steps 10000] [--layers 20] [--every 10] [--s3]

Synthesizes runs in the recorder's on-disk format (pyarrow, in a temp dir): ``steps`` and
``groups`` every step, ``params`` and ``activations`` every ``--every`` steps for ``--layers``
layers, histograms and first-layer weights now and then, ten epochs. Then, side by side in one
run of this script, it times ``runlint check --jobs 1`` and ``--jobs 2`` on the corpus (JSON to
/dev/null), the peak RSS of the checking processes at two corpus sizes, and the wall time of
``runlint check`` on one small run. Every command is a fresh subprocess.

    python bench/check_speed.py --tree 10000 [--tree-only] [--tree-run NAME] [--tree-select RULES]

``--tree N`` also builds an N-run tree (``exp-NNN/version_M/``, every file hard-linked, else
copied, from one small corpus run that has a finding) and times ``runlint check tree --jobs 2``
(text, stdout a pipe): the time to the first finding printed, the total time, and the peak RSS
of its largest process, on the tree and on a tenth of it (a check that streams keeps the same
peak whatever the number of runs). ``--tree-only`` skips the synthesized corpus.

With ``--s3`` it also uploads the same runs to an S3-compatible server on 127.0.0.1 (moto's,
started here: ``pip install -e '.[dev]'``) and times ``runlint check s3://bench/runs`` beside
``runlint check`` of the local folder, with the ratio: what reading each run's files through
s3fs and botocore costs over reading them from disk.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from runlint.schema.layout import FORMAT_NAME, FORMAT_VERSION, compact_name

# Runs a command; prints its wall time, the CPU time of its process tree (user + system: what
# the check costs, whatever else loads the machine) and the peak RSS of its largest process.
MEASURE = """
import json, resource, subprocess, sys, time
start = time.perf_counter()
proc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
wall = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"wall": wall, "rss_mb": usage.ru_maxrss / 1024, "rc": proc.returncode,
                  "cpu": usage.ru_utime + usage.ru_stime,
                  "stderr": proc.stderr.decode()[-300:]}))
"""


# Runs ``runlint check`` with stdout a pipe; prints the time to its first finding line, its
# wall time and the peak RSS of its largest process (the workers included: they are its children).
FIRST = """
import json, re, resource, subprocess, sys, time
start = time.perf_counter()
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
first, lines = None, 0
for line in proc.stdout:
    lines += 1
    if first is None and re.match(r"RL[0-9]{3} ", line):
        first = time.perf_counter() - start
err = proc.stderr.read()
proc.wait()
wall = time.perf_counter() - start
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"first": first, "wall": wall, "rss_mb": usage.ru_maxrss / 1024,
                  "rc": proc.returncode, "lines": lines, "stderr": err[-300:]}))
"""


def write_tree(root: Path, runs: int, source: Path) -> str:
    """``runs`` copies of the run ``source`` as ``root/exp-NNN/version_M`` (100 a folder), each
    file hard-linked (copied where links cannot be made); how the files were made."""
    files = [p for p in sorted(source.iterdir()) if p.is_file()]
    how = "hard-linked"
    for i in range(runs):
        run = root / f"exp-{i // 100:03d}" / f"version_{i % 100}"
        run.mkdir(parents=True)
        for f in files:
            try:
                os.link(f, run / f.name)
            except OSError:
                shutil.copyfile(f, run / f.name)
                how = "copied"
    return how


def bench_tree(tmp: Path, runs: int, name: str, select: str | None = None) -> None:
    """Time to first finding, total time and peak RSS of ``runlint check`` on a tree of runs."""
    source = Path(__file__).resolve().parents[1] / "fixtures" / "corpus" / name
    if not source.is_dir():
        raise SystemExit(f"{source}: no such corpus run")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    print()
    print(
        f"{'tree (runs of ' + name + ')':44s} {'runs':>6s} {'first finding s':>15s} "
        f"{'wall s':>7s} {'runs/s':>7s} {'peak RSS MiB':>13s}"
    )
    for n in sorted({max(1, runs // 10), runs}):
        tree = tmp / f"tree-{n}"
        start = time.perf_counter()
        how = write_tree(tree, n, source)
        made = time.perf_counter() - start
        cmd = [
            sys.executable,
            "-c",
            FIRST,
            sys.executable,
            "-m",
            "runlint",
            "check",
            str(tree),
            "--jobs",
            "2",
        ]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
        r = json.loads(out.stdout)
        if r["rc"] not in (0, 1):
            raise SystemExit(f"runlint check failed (exit {r['rc']}): {r['stderr']}")
        first = f"{r['first']:.2f}" if r["first"] is not None else "none"
        label = f"check -j 2{' --select ' + select if select else ''} ({how} in {made:.0f}s)"
        print(
            f"{label:44s} {n:6d} {first:>15s} {r['wall']:7.1f} {n / r['wall']:7.1f} "
            f"{r['rss_mb']:13.0f}"
        )
        shutil.rmtree(tree)


def synth_tables(steps: int, layers: int, every: int, seed: int) -> dict[str, pa.Table]:
    """One run's tables, shaped like the recorder's (rank 0, no micro-steps)."""
    rng = np.random.default_rng(seed)
    step = np.arange(steps, dtype=np.int64)
    zeros = np.zeros(steps, dtype=np.int64)
    loss = 2.3 * np.exp(-step / (steps / 4)) + 0.3 + 0.05 * rng.standard_normal(steps)
    lr = np.where(step < steps // 2, 0.1, 0.05)
    probe = step[::every]
    n = probe.size * layers
    names = np.array([f"layers.{i}.weight" for i in range(layers)], dtype=object)
    modules = np.array([f"act.{i}" for i in range(layers)], dtype=object)
    depth = np.tile(np.arange(layers), probe.size)
    hist_steps = step[:: every * 10]
    bins = 16
    hn = hist_steps.size * layers
    edges = np.linspace(-3, 3, bins + 1)
    epochs = 10
    per_epoch = steps // epochs
    return {
        "steps": pa.table(
            {"step": step, "rank": zeros, "micro": zeros, "time": step * 0.05, "loss": loss}
        ),
        "groups": pa.table(
            {
                "step": step,
                "rank": zeros,
                "group": zeros,
                "lr": lr,
                "momentum": np.full(steps, 0.9),
                "dampening": np.zeros(steps),
                "weight_decay": np.full(steps, 5e-4),
                "nesterov": np.zeros(steps),
            }
        ),
        "params": pa.table(
            {
                "step": np.repeat(probe, layers),
                "rank": np.zeros(n, dtype=np.int64),
                "param": np.tile(names, probe.size),
                "grad_norm": rng.lognormal(-1, 0.3, n) * (1 + 0.02 * depth),
                "param_norm": rng.lognormal(2, 0.1, n),
                "update_norm": rng.lognormal(-5, 0.3, n),
                "update_ratio": rng.lognormal(np.log(1e-3), 0.3, n),
            }
        ),
        "activations": pa.table(
            {
                "step": np.repeat(probe, layers),
                "rank": np.zeros(n, dtype=np.int64),
                "module": np.tile(modules, probe.size),
                "kind": np.full(n, "ReLU", dtype=object),
                "mean": rng.uniform(0.2, 0.6, n),
                "std": rng.uniform(0.5, 1.0, n),
                "saturated": np.zeros(n),
                "dead": rng.uniform(0.3, 0.6, n),
                "dead_units": rng.uniform(0.0, 0.02, n),
            }
        ),
        "histograms": pa.table(
            {
                "step": np.repeat(hist_steps, layers),
                "rank": np.zeros(hn, dtype=np.int64),
                "source": np.full(hn, "activation", dtype=object),
                "name": np.tile(modules, hist_steps.size),
                "edges": [edges] * hn,
                "counts": list(rng.integers(0, 100, (hn, bins)).astype(float)),
            }
        ),
        "weights": pa.table(
            {
                "step": np.array([0, steps - 1], dtype=np.int64),
                "rank": np.zeros(2, dtype=np.int64),
                "param": np.array([names[0]] * 2, dtype=object),
                "shape": [[16, 8]] * 2,
                "values": list(rng.standard_normal((2, 128))),
            }
        ),
        "epochs": pa.table(
            {
                "epoch": np.arange(epochs, dtype=np.int64),
                "step": (np.arange(epochs, dtype=np.int64) + 1) * per_epoch - 1,
                "rank": np.zeros(epochs, dtype=np.int64),
                "train_loss": loss[per_epoch - 1 :: per_epoch][:epochs],
                "val_loss": loss[per_epoch - 1 :: per_epoch][:epochs] + 0.05,
                "train_acc": np.linspace(0.5, 0.9, epochs),
                "val_acc": np.linspace(0.48, 0.86, epochs),
            }
        ),
    }


def write_corpus(root: Path, runs: int, steps: int, layers: int, every: int) -> None:
    """``runs`` run directories under ``root`` (8 distinct variants, copied round-robin)."""
    variants = []
    for v in range(min(8, runs)):
        src = root / f"run-{v:04d}"
        src.mkdir(parents=True)
        for table, data in synth_tables(steps, layers, every, seed=v).items():
            pq.write_table(data, src / compact_name(table, 0), compression="zstd")
        doc = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "complete": True,
            "meta": {
                "num_classes": 10,
                "batch_size": 128,
                "loss": "cross_entropy",
                "provenance": {"num_classes": "given", "batch_size": "given"},
            },
        }
        (src / "meta.json").write_text(json.dumps(doc))
        variants.append(src)
    for i in range(len(variants), runs):
        shutil.copytree(variants[i % len(variants)], root / f"run-{i:04d}")


def measure(args: list[str]) -> dict[str, float]:
    # Bytecode caching as after ``pip install`` (a sandbox may set PYTHONDONTWRITEBYTECODE,
    # which recompiles runlint and its rules at every start).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, *args], capture_output=True, text=True, check=True, env=env
    )
    result: dict[str, float] = json.loads(out.stdout)
    if result["rc"] not in (0, 1):
        raise SystemExit(f"runlint check failed (exit {result['rc']}): {result['stderr']}")
    return result


def runlint_check(*args: str) -> list[str]:
    return [sys.executable, "-m", "runlint", "check", *args]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--layers", type=int, default=20)
    parser.add_argument("--every", type=int, default=10)
    parser.add_argument(
        "--s3", action="store_true", help="also time the runs read from a local S3 server (moto)"
    )
    parser.add_argument("--tree", type=int, default=0, help="also time a tree of N small runs")
    parser.add_argument("--tree-only", action="store_true", help="only the tree")
    parser.add_argument("--tree-run", default="rl101-last-layer-x50", help="corpus run to copy")
    parser.add_argument("--tree-select", help="--select for the tree's check (default: all)")
    args = parser.parse_args()
    if args.tree_only:
        print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
        with tempfile.TemporaryDirectory(prefix="runlint-bench-") as tmp:
            bench_tree(Path(tmp), args.tree or 10_000, args.tree_run, args.tree_select)
        return

    from runlint.check import engine

    codes = engine.discover().codes
    print(f"rules in the catalog ({len(codes)}): {' '.join(codes)}")
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory(prefix="runlint-bench-") as tmp:
        big, small_corpus = Path(tmp) / "big", Path(tmp) / "small"
        start = time.perf_counter()
        write_corpus(big, args.runs, args.steps, args.layers, args.every)
        small_n = max(1, args.runs // 4)
        small_corpus.mkdir()
        for i in range(small_n):
            (small_corpus / f"run-{i:04d}").symlink_to(big / f"run-{i:04d}")
        size = sum(f.stat().st_size for f in big.rglob("*") if f.is_file()) / 2**20
        print(
            f"corpus: {args.runs} runs × {args.steps} steps × {args.layers} layers "
            f"(params/activations every {args.every} steps), {size:.0f} MiB, "
            f"written in {time.perf_counter() - start:.1f}s"
        )
        one = Path(tmp) / "one"
        one.mkdir()
        for table, data in synth_tables(300, 3, 10, seed=1).items():
            pq.write_table(data, one / compact_name(table, 0))
        (one / "meta.json").write_text(
            json.dumps({"format": FORMAT_NAME, "version": 1, "complete": True})
        )

        print()
        print(
            f"{'command':44s} {'runs':>5s} {'wall s':>7s} {'runs/s':>7s} {'CPU s':>7s} "
            f"{'runs/CPU-s':>10s} {'peak RSS MiB':>13s}"
        )
        rows = [
            ("runlint check --jobs 1", big, ["--jobs", "1"], args.runs),
            ("runlint check --jobs 2", big, ["--jobs", "2"], args.runs),
            ("runlint check --jobs 2 (quarter corpus)", small_corpus, ["--jobs", "2"], small_n),
            ("runlint check --jobs 1 (quarter corpus)", small_corpus, ["--jobs", "1"], small_n),
        ]
        for label, path, flags, n in rows:
            r = measure(runlint_check(str(path), *flags, "--format", "json", "-o", os.devnull))
            print(
                f"{label:44s} {n:5d} {r['wall']:7.2f} {n / r['wall']:7.1f} {r['cpu']:7.2f} "
                f"{n / r['cpu']:10.1f} {r['rss_mb']:13.0f}"
            )
        for label, cmd in (
            ("runlint check one small run (text), median", runlint_check(str(one))),
            ("python -c pass (interpreter start), median", [sys.executable, "-c", "pass"]),
        ):
            measure(cmd)  # warm-up: writes the bytecode cache
            r = sorted((measure(cmd) for _ in range(9)), key=lambda m: m["wall"])[4]
            print(f"{label:44s} {'':5s} {r['wall']:7.2f} {'':7s} {r['cpu']:7.2f}")
        print(
            "runs/CPU-s is load-independent: with two idle cores, --jobs 2 runs at about "
            "2 × runs/CPU-s (--jobs 1 row)."
        )
        if args.s3:
            print()
            object_storage(big, args.runs, size)

        if args.tree:
            bench_tree(Path(tmp), args.tree, args.tree_run, args.tree_select)


def start_s3() -> tuple[Any, dict[str, str]]:
    """A moto S3 server on a free loopback port, and the environment that points botocore at
    it (fake credentials; no AWS config files are read)."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    return server, env


def object_storage(corpus: Path, runs: int, size: float) -> None:
    """``runlint check`` of the corpus from disk and from a local S3 server, side by side."""
    server, env = start_s3()
    os.environ.update(env)  # for this process's upload and every measured subprocess
    os.environ.pop("AWS_PROFILE", None)
    try:
        import s3fs

        fs = s3fs.S3FileSystem()
        fs.mkdir("bench")
        start = time.perf_counter()
        fs.put(str(corpus) + "/", "bench/runs", recursive=True)
        uploaded = time.perf_counter() - start
        objects = len(fs.find("bench/runs"))
        print(
            f"object storage: the same {runs} runs ({size:.0f} MiB, {objects} objects) uploaded "
            f"to a moto S3 server on {env['AWS_ENDPOINT_URL']} in {uploaded:.1f}s"
        )
        print(
            f"{'command':44s} {'runs':>5s} {'local s':>8s} {'s3 s':>7s} {'s3/local':>8s} "
            f"{'local CPU s':>11s} {'s3 CPU s':>8s} {'s3 RSS MiB':>10s}"
        )
        for jobs in ("1", "2"):
            flags = ["--jobs", jobs, "--format", "json", "-o", os.devnull]
            here = measure(runlint_check(str(corpus), *flags))
            there = measure(runlint_check("s3://bench/runs", *flags))
            print(
                f"{'runlint check --jobs ' + jobs:44s} {runs:5d} {here['wall']:8.2f} "
                f"{there['wall']:7.2f} {there['wall'] / here['wall']:8.2f} {here['cpu']:11.2f} "
                f"{there['cpu']:8.2f} {there['rss_mb']:10.0f}"
            )
        print(
            "s3 s: wall time of the check of s3://bench/runs (list once, then each run's files "
            "fetched to a temporary folder, checked, deleted); the server's own CPU is not in "
            "the CPU columns."
        )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
