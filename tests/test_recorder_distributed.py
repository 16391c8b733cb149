"""Distributed recording: two real gloo processes with DistributedDataParallel on CPU."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

import runlint

CHILD = textwrap.dedent(
    """
    import sys, torch, torch.distributed as dist, runlint
    from torch import nn
    from torch.nn.parallel import DistributedDataParallel as DDP
    rank, port, logdir = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    torch.manual_seed(0)  # same initial weights on both ranks
    model = DDP(nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4)))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    torch.manual_seed(100 + rank)  # different data per rank
    with runlint.record(model, opt, logdir, stats_every=2, flush_every=4) as rec:
        for _ in range(6):
            x, y = torch.randn(16, 8), torch.randint(0, 4, (16,))
            loss = nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            rec.log(loss=loss)
    dist.destroy_process_group()
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_two_gloo_ranks_record_their_own_rows(tmp_path: Path) -> None:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    logdir = tmp_path / "run"
    port = str(_free_port())
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    children = [
        subprocess.Popen(
            [sys.executable, str(script), str(rank), port, str(logdir)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank in (0, 1)
    ]
    outputs = [child.communicate(timeout=300)[0] for child in children]
    assert [c.returncode for c in children] == [0, 0], outputs

    names = sorted(p.name for p in logdir.iterdir())
    assert "steps-r0.parquet" in names and "steps-r1.parquet" in names
    run = runlint.load_run(logdir)
    assert run.complete
    assert run.meta["world_size"] == 2
    assert run.meta["params"][0]["name"] == "0.weight"  # unwrapped from DDP's "module."

    raw = run.raw["steps"]
    assert sorted(set(raw["rank"])) == [0, 1] and len(raw) == 12
    by_rank = raw.pivot(index="step", columns="rank", values="loss")
    assert not np.allclose(by_rank[0], by_rank[1])  # each rank saw its own data
    np.testing.assert_allclose(run.steps["loss"], by_rank.mean(axis=1))  # merged view

    params = run.raw["params"]
    assert sorted(set(params["rank"])) == [0, 1]
    grads = params.pivot_table(index=["step", "param"], columns="rank", values="grad_norm")
    # taken at optimizer-step time, after DDP averaged the gradients: equal on both ranks
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-6)
    assert sorted(set(run.params["step"])) == [0, 2, 4]
    assert sorted(set(run.raw["groups"]["rank"])) == [0, 1]
