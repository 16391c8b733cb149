"""Step-time overhead of ``runlint.record`` at default settings, measured side by side.

For each model (an MLP with tanh, a small CNN, a small transformer) three copies with identical
initial weights train in the same process: plain, recorded at the defaults (on CPU the part
files are written on the training thread at each flush) and recorded with a background writer
thread (the default for CUDA models). Blocks of steps alternate between the
copies so that load from other processes hits all three alike. Prints, per model, the median
step time of each copy, the median and mean ratios recorded/plain (the mean includes flushes),
the ratio of process CPU time (all threads, so the writer thread counts; other processes'
load does not) and the bytes written per step.

    python bench/overhead.py            # about a minute on a 2-core CPU
    python bench/overhead.py --rounds 10 --block 10 --models mlp
"""

from __future__ import annotations

import argparse
import copy
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


def measure(name: str, rounds: int, block: int, root: Path) -> dict[str, float]:
    torch.manual_seed(0)
    base, batch = MODELS[name]()
    batches = [batch() for _ in range(16)]
    variants = ["plain", "recorded", "recorded-thread"]
    models = {v: copy.deepcopy(base) for v in variants}
    opts = {v: torch.optim.AdamW(models[v].parameters(), lr=1e-3) for v in variants}
    recs = {
        "recorded": runlint.record(models["recorded"], opts["recorded"], root / name),
        "recorded-thread": runlint.record(
            models["recorded-thread"], opts["recorded-thread"], root / f"{name}-t", background=True
        ),
    }
    for rec in recs.values():
        rec.start()
    times: dict[str, list[float]] = {v: [] for v in variants}
    cpu: dict[str, float] = dict.fromkeys(variants, 0.0)
    steps = 0
    try:
        for r in range(rounds + 1):  # round 0 warms up and is not counted
            for v in variants if r % 2 else reversed(variants):
                model, opt, rec = models[v], opts[v], recs.get(v)
                c0 = time.process_time()
                for i in range(block):
                    x, y = batches[(steps + i) % len(batches)]
                    t0 = time.perf_counter()
                    loss = loss_fn(model(x), y)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    if rec is not None:
                        rec.log(loss=loss)
                    if r:
                        times[v].append(time.perf_counter() - t0)
                if r:
                    cpu[v] += time.process_time() - c0
            steps += block
    finally:
        for rec in recs.values():
            rec.close()
    plain_med = statistics.median(times["plain"])
    plain_mean = statistics.fmean(times["plain"])
    out = {"plain_ms": plain_med * 1e3}
    for v in variants[1:]:
        out[f"{v}_ms"] = statistics.median(times[v]) * 1e3
        out[f"{v}_median_ratio"] = statistics.median(times[v]) / plain_med
        out[f"{v}_mean_ratio"] = statistics.fmean(times[v]) / plain_mean
        out[f"{v}_cpu_ratio"] = cpu[v] / cpu["plain"]
    total_steps = (rounds + 1) * block
    size = sum(p.stat().st_size for p in (root / name).rglob("*") if p.is_file())
    out["bytes_per_step"] = size / total_steps
    out["steps"] = total_steps
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=60, help="alternations of the copies")
    parser.add_argument("--block", type=int, default=10, help="steps per block")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--models", nargs="*", default=list(MODELS), choices=list(MODELS))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, defaults of record()")
    header = (
        f"{'model':<12} {'plain ms':>9} {'rec ms':>8} {'median':>7} {'mean':>6} {'cpu':>6}"
        f" {'thread-writer':>13} {'mean':>6} {'cpu':>6} {'bytes/step':>10}"
    )
    print(header)
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            r = measure(name, args.rounds, args.block, Path(tmp))
            print(
                f"{name:<12} {r['plain_ms']:9.2f} {r['recorded_ms']:8.2f}"
                f" {r['recorded_median_ratio']:7.3f} {r['recorded_mean_ratio']:6.3f}"
                f" {r['recorded_cpu_ratio']:6.3f}"
                f" {r['recorded-thread_median_ratio']:13.3f} {r['recorded-thread_mean_ratio']:6.3f}"
                f" {r['recorded-thread_cpu_ratio']:6.3f}"
                f" {r['bytes_per_step']:10.0f}",
                flush=True,
            )
    print(
        "ratios recorded/plain: median and mean wall time per step (the mean includes flushes),"
        " cpu = process CPU time (all threads) per step, insensitive to other processes' load"
    )


if __name__ == "__main__":
    main()
