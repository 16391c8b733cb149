"""Step-time overhead of ``runlint.record`` at default settings, measured side by side.

For each model (an MLP with tanh, a small CNN, a small transformer) two copies with identical
initial weights train in the same process: plain and recorded at the defaults (on CPU the part
files are written on the training thread at each flush; ``--thread`` adds a third copy with the
background writer thread that CUDA models get). Blocks of ``--block`` optimizer steps alternate
between the copies (ABBA order) for ``--rounds`` rounds, so load from other processes hits them
alike; a block of 10 steps holds exactly one statistics step (``stats_every=10``), so a block's
time is an honest per-step average. A third copy, trained plain too ("control"), measures the
noise floor: its ratio to the plain copy differs from 1 only by where each copy landed in
memory and by timing noise. Per model it prints:

  block ratio  median over rounds of (recorded block time / plain block time of the same round),
               with a 95% bootstrap interval of that median and the interquartile range of the
               per-round ratios: the headline figure, robust to preempted blocks
  step ratio   median recorded step time / median plain step time (a typical step: one without
               statistics)
  mean ratio   total recorded time / total plain time (includes flushes and outliers)
  cpu ratio    process CPU time (all threads, so a writer thread counts; other processes' load
               does not) recorded / plain
  bytes/step   bytes the recorded run left on disk, per step

and the garbage collections of each generation during the measurement (all copies together: a
recorder that kept Python objects per step would set off full collections, each a pass over
every object torch holds).

With ``--live`` a further copy records with the live check on (``check=True``, default
settings otherwise: a check after each flush, in a niced checker process); the line after its
model says how many checks ran and the CPU time each took in the checker (not counted in the
copy's own cpu ratio: it is another process, which is why it is printed apart).

    python bench/overhead.py                 # about 3 minutes on a 2-core CPU
    python bench/overhead.py --live --models mlp-tanh
    python bench/overhead.py --rounds 40 --models mlp-tanh
"""

from __future__ import annotations

import argparse
import copy
import gc
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

import runlint


class Block(nn.Module):
    """Pre-norm transformer block with a GELU MLP."""

    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.norm2 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.norm2(x))


class Transformer(nn.Module):
    def __init__(self, vocab: int = 256, d: int = 64, heads: int = 4, layers: int = 2) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.blocks = nn.Sequential(*(Block(d, heads) for _ in range(layers)))
        self.head = nn.Linear(d, vocab)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.embed(tokens)))


def mlp() -> tuple[nn.Module, Callable[[], tuple[torch.Tensor, torch.Tensor]]]:
    layers: list[nn.Module] = [nn.Linear(128, 256), nn.Tanh()]
    for _ in range(4):
        layers += [nn.Linear(256, 256), nn.Tanh()]
    model = nn.Sequential(*layers, nn.Linear(256, 10))
    return model, lambda: (torch.randn(64, 128), torch.randint(0, 10, (64,)))


def cnn() -> tuple[nn.Module, Callable[[], tuple[torch.Tensor, torch.Tensor]]]:
    model = nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 32, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(32, 10),
    )
    return model, lambda: (torch.randn(16, 3, 32, 32), torch.randint(0, 10, (16,)))


def transformer() -> tuple[nn.Module, Callable[[], tuple[torch.Tensor, torch.Tensor]]]:
    model = Transformer()
    return model, lambda: (torch.randint(0, 256, (8, 32)), torch.randint(0, 256, (8, 32)))


MODELS = {"mlp-tanh": mlp, "cnn": cnn, "transformer": transformer}


def loss_fn(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


def _bootstrap_median(values: list[float], n: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% bootstrap interval of the median of ``values``."""
    rng = random.Random(seed)
    medians = sorted(statistics.median(rng.choices(values, k=len(values))) for _ in range(n))
    return medians[int(0.025 * n)], medians[int(0.975 * n) - 1]


def measure(
    name: str,
    rounds: int,
    block: int,
    root: Path,
    thread: bool = False,
    control: bool = True,
    live: bool = False,
) -> dict[str, float]:
    torch.manual_seed(0)
    base, batch = MODELS[name]()
    batches = [batch() for _ in range(16)]
    variants = [
        "plain",
        "recorded",
        *(["recorded-thread"] if thread else []),
        *(["recorded-live"] if live else []),
        *(["control"] if control else []),
    ]
    models = {v: copy.deepcopy(base) for v in variants}
    opts = {v: torch.optim.AdamW(models[v].parameters(), lr=1e-3) for v in variants}
    recs: dict[str, runlint.Recorder] = {
        "recorded": runlint.record(models["recorded"], opts["recorded"], root / name)
    }
    if thread:
        recs["recorded-thread"] = runlint.record(
            models["recorded-thread"], opts["recorded-thread"], root / f"{name}-t", background=True
        )
    if live:
        recs["recorded-live"] = runlint.record(
            models["recorded-live"],
            opts["recorded-live"],
            root / f"{name}-live",
            check=True,
            on_finding=lambda event: None,  # quiet: the findings are not what is measured
        )
    for rec in recs.values():
        rec.start()
    steps: dict[str, list[float]] = {v: [] for v in variants}  # every counted step's time
    blocks: dict[str, list[float]] = {v: [] for v in variants}  # per round: the block's time
    cpu: dict[str, float] = dict.fromkeys(variants, 0.0)
    done = 0
    collections = [0, 0, 0]

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collections[info["generation"]] += 1

    gc.collect()
    gc.callbacks.append(count)
    try:
        for r in range(rounds + 1):  # round 0 warms up and is not counted
            for v in variants if r % 2 else list(reversed(variants)):
                model, opt = models[v], opts[v]
                recorder = recs.get(v)
                c0 = time.process_time()
                b0 = time.perf_counter()
                for i in range(block):
                    x, y = batches[(done + i) % len(batches)]
                    t0 = time.perf_counter()
                    loss = loss_fn(model(x), y)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    if recorder is not None:
                        recorder.log(loss=loss)
                    if r:
                        steps[v].append(time.perf_counter() - t0)
                if r:
                    blocks[v].append(time.perf_counter() - b0)
                    cpu[v] += time.process_time() - c0
            done += block
    finally:
        gc.callbacks.remove(count)
        for rec in recs.values():
            rec.close()
    plain_step = statistics.median(steps["plain"])
    out = {"plain_ms": plain_step * 1e3}
    for v in variants[1:]:
        ratios = [a / b for a, b in zip(blocks[v], blocks["plain"], strict=True)]
        q1, _, q3 = statistics.quantiles(ratios, n=4)
        lo, hi = _bootstrap_median(ratios)
        out[f"{v}_ms"] = statistics.median(steps[v]) * 1e3
        out[f"{v}_block_ratio"] = statistics.median(ratios)
        out[f"{v}_ci_lo"], out[f"{v}_ci_hi"] = lo, hi
        out[f"{v}_q1"], out[f"{v}_q3"] = q1, q3
        out[f"{v}_step_ratio"] = statistics.median(steps[v]) / plain_step
        out[f"{v}_mean_ratio"] = sum(blocks[v]) / sum(blocks["plain"])
        out[f"{v}_cpu_ratio"] = cpu[v] / cpu["plain"]
    hook = recs["recorded-live"].live if live else None
    if hook is not None:
        out["live_checks"] = hook.checks
        out["live_cpu_ms"] = 1e3 * hook.cpu / max(1, hook.checks)
        out["live_wall_ms"] = 1e3 * hook.wall / max(1, hook.checks)
    size = sum(p.stat().st_size for p in (root / name).rglob("*") if p.is_file())
    out["bytes_per_step"] = size / done
    out["steps"] = done
    out["gc0"], out["gc1"], out["gc2"] = collections
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=100, help="alternations of the copies")
    parser.add_argument("--block", type=int, default=10, help="steps per block")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--models", nargs="*", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--thread", action="store_true", help="also a background-writer copy")
    parser.add_argument("--live", action="store_true", help="also a copy with check=True")
    parser.add_argument(
        "--no-control", dest="control", action="store_false", help="no plain control copy"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, defaults of record(),"
        f" {args.rounds} rounds of {args.block} steps"
    )
    variants = [
        "recorded",
        *(["recorded-thread"] if args.thread else []),
        *(["recorded-live"] if args.live else []),
        *(["control"] if args.control else []),
    ]
    print(
        f"{'model':<12} {'copy':<15} {'plain ms':>8} {'block ratio [95% CI]':>22}"
        f" {'IQR':>13} {'step':>6} {'mean':>6} {'cpu':>6} {'bytes/step':>10}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            r = measure(
                name,
                args.rounds,
                args.block,
                Path(tmp),
                thread=args.thread,
                control=args.control,
                live=args.live,
            )
            for v in variants:
                print(
                    f"{name:<12} {v:<15} {r['plain_ms']:8.2f}"
                    f" {r[f'{v}_block_ratio']:8.3f} [{r[f'{v}_ci_lo']:.3f}, {r[f'{v}_ci_hi']:.3f}]"
                    f" {r[f'{v}_q1']:6.3f}-{r[f'{v}_q3']:.3f}"
                    f" {r[f'{v}_step_ratio']:6.3f} {r[f'{v}_mean_ratio']:6.3f}"
                    f" {r[f'{v}_cpu_ratio']:6.3f} {r['bytes_per_step']:10.0f}",
                    flush=True,
                )
            if "live_checks" in r:
                print(
                    f"{'':<12} live check: {r['live_checks']:.0f} checks, CPU"
                    f" {r['live_cpu_ms']:.0f} ms per check (wall {r['live_wall_ms']:.0f} ms) in"
                    " the checker process",
                    flush=True,
                )
            print(
                f"{'':<12} gc collections during the run: gen0 {r['gc0']:.0f}, gen1"
                f" {r['gc1']:.0f}, gen2 {r['gc2']:.0f} ({r['steps']:.0f} steps per copy)",
                flush=True,
            )
    print(
        "copy/plain: block = median per-round ratio of block times (95% bootstrap CI, IQR);"
        " step = median step; mean = total time; cpu = process CPU time;"
        " control = a second plain copy (the noise floor)"
    )


if __name__ == "__main__":
    main()
