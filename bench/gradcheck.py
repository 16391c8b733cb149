"""Benchmark ``runlint gradcheck``: verdicts against ``torch.autograd.gradcheck``, and wall time.

    python bench/gradcheck.py

1. Agreement: for every example factory (correct and buggy) the runlint verdict (pass unless a
   parameter's relative error > 1e-2) is printed next to ``torch.autograd.gradcheck`` run on a
   reduced problem: the same model in float64 and eval mode, 2 data points, the loss as a
   function of all parameters (fast mode: one random directional derivative per parameter).
   A ReLU net sitting exactly on a kink is listed apart: runlint reports the kink, torch fails.
2. Wall time of the check for a ~1M-parameter MLP with the default sampling (3 data points,
   10 coordinates per parameter), in-process and as a ``runlint gradcheck`` subprocess (which
   includes importing torch), next to torch's fast-mode gradcheck on the same model.
"""

from __future__ import annotations

import copy
import resource
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import torch
from torch import nn
from torch.func import functional_call

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runlint.pretrain.factory import Spec, load_spec  # noqa: E402
from runlint.pretrain.gradcheck import GradcheckOptions, run_gradcheck  # noqa: E402

FACTORIES = [
    "mlp.py:make",
    "cnn.py:make",
    "transformer.py:make",
    "svm.py:make",
    "regularized.py:make",
    "buggy.py:make_correct",
    "buggy.py:make",
    "buggy.py:make_transposed",
    "buggy.py:make_missing",
]

BIG_FACTORY = '''
import torch
from torch import nn


def make():
    """784-1024-256-10 ReLU MLP (1,068,810 parameters) on 64 random 28×28 inputs."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(784, 1024), nn.ReLU(), nn.Linear(1024, 256), nn.ReLU(), nn.Linear(256, 10)
    )
    return {"model": model, "loss_fn": nn.CrossEntropyLoss(),
            "inputs": torch.randn(64, 784), "targets": torch.arange(64) % 10}
'''


def torch_gradcheck(spec: Spec, n: int = 2) -> bool:
    """``torch.autograd.gradcheck`` of the loss w.r.t. all parameters, float64, n points."""
    model = copy.deepcopy(spec.model).double().eval()
    loss_fn = spec.loss_fn
    inputs = tuple(t[:n].double() if t.is_floating_point() else t[:n] for t in spec.input_tuple)
    targets = spec.targets[:n]
    names = [name for name, p in model.named_parameters() if p.requires_grad]
    params = tuple(p.detach().clone().requires_grad_(True) for _, p in model.named_parameters())

    class Total(nn.Module):
        """Data loss (+ regularization) as a module, so functional_call can swap parameters."""

        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def forward(self) -> torch.Tensor:
            total = loss_fn(self.inner(*inputs), targets)
            if spec.regularization is not None:
                total = total + spec.regularization(self.inner)
            return total

    total = Total()

    def loss(*flat: torch.Tensor) -> torch.Tensor:
        values = {f"inner.{name}": p for name, p in zip(names, flat, strict=True)}
        return functional_call(total, values, ())

    return bool(
        torch.autograd.gradcheck(
            loss, params, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=False, fast_mode=True
        )
    )


def relu_at_kink() -> Spec:
    torch.manual_seed(0)
    first = nn.Linear(3, 4)
    model = nn.Sequential(first, nn.ReLU(), nn.Linear(4, 3)).double()
    x = torch.randn(2, 3, dtype=torch.float64)
    with torch.no_grad():
        first.bias[0] = -(x[0] @ first.weight[0])
    return Spec(model, nn.CrossEntropyLoss(), x, torch.tensor([0, 1]))


def agreement() -> None:
    print("1. verdicts: runlint gradcheck vs torch.autograd.gradcheck (float64, fast mode)")
    print(f"   {'factory':28} {'runlint':>8} {'worst rel err':>14} {'torch':>8}  agree")
    agree = 0
    for ref in FACTORIES:
        spec = load_spec(str(ROOT / "examples" / ref))
        report = run_gradcheck(spec)
        errors = [p.max_rel_error or 0.0 for ph in report.phases for p in ph.params]
        ours = "fail" if report.failed else "pass"
        theirs = "pass" if torch_gradcheck(load_spec(str(ROOT / "examples" / ref))) else "fail"
        agree += ours == theirs
        print(f"   {ref:28} {ours:>8} {max(errors):14.1e} {theirs:>8}  {ours == theirs}")
    print(f"   agreement: {agree}/{len(FACTORIES)}")
    report = run_gradcheck(relu_at_kink(), GradcheckOptions(coords=16))
    kinks = sum(p.kinks for p in report.phases[0].params)
    theirs = "pass" if torch_gradcheck(relu_at_kink()) else "fail"
    ours = "fail" if report.failed else "pass"
    print(
        f"   {'ReLU exactly at a kink':28} {ours:>8} {'':14} {theirs:>8}  "
        f"(runlint: {kinks} kink coordinates reported, not failed)"
    )


def timing() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "big_mlp.py"
        path.write_text(textwrap.dedent(BIG_FACTORY))
        spec = load_spec(f"{path}:make")
        count = sum(p.numel() for p in spec.model.parameters())
        print(
            f"\n2. wall time, {count:,}-parameter MLP, default sampling "
            "(3 data points, 10 coordinates per parameter)"
        )
        run_gradcheck(spec)  # warm-up
        times = []
        for _ in range(3):
            start = time.perf_counter()
            report = run_gradcheck(spec)
            times.append(time.perf_counter() - start)
        checked = sum(p.checked for p in report.phases[0].params)
        print(
            f"   runlint gradcheck, in-process   {min(times):7.2f} s  (best of 3; "
            f"{checked} coordinates, verdict {report.verdict})"
        )
        start = time.perf_counter()
        torch_ok = torch_gradcheck(load_spec(f"{path}:make"), n=3)
        print(
            f"   torch gradcheck fast mode       {time.perf_counter() - start:7.2f} s  "
            f"(passed: {torch_ok})"
        )
        start = time.perf_counter()
        cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        proc = subprocess.run(
            [sys.executable, "-m", "runlint", "gradcheck", f"{path}:make"],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        print(
            f"   runlint gradcheck, CLI process  {time.perf_counter() - start:7.2f} s  "
            f"(exit {proc.returncode}; includes importing torch)"
        )
        cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
        used = cpu.ru_utime - cpu_before.ru_utime + cpu.ru_stime - cpu_before.ru_stime
        print(f"   runlint gradcheck, CLI CPU time {used:7.2f} s  (user + system of that process)")


if __name__ == "__main__":
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), CPU")
    agreement()
    timing()
