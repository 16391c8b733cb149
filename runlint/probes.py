"""On-device statistics the recorder takes. Every function returns a device tensor: no host sync."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

#: Activation modules the recorder hooks, by the kind name rules see.
ACTIVATION_KINDS: dict[type[nn.Module], str] = {
    nn.Tanh: "tanh",
    nn.Sigmoid: "sigmoid",
    nn.Hardtanh: "hardtanh",
    nn.Hardsigmoid: "sigmoid",
    nn.ReLU: "relu",
    nn.ReLU6: "relu6",
    nn.LeakyReLU: "leaky_relu",
    nn.PReLU: "leaky_relu",
    nn.RReLU: "leaky_relu",
    nn.ELU: "elu",
    nn.SELU: "selu",
    nn.CELU: "elu",
    nn.GELU: "gelu",
    nn.SiLU: "silu",
    nn.Mish: "mish",
    nn.Softplus: "softplus",
    nn.Softsign: "softsign",
}

#: Columns of ``activation_stats`` in order.
ACTIVATION_COLUMNS = ("mean", "std", "saturated", "dead", "dead_units")

_SYMLOG_EDGES = (
    -10.0,
    -3.0,
    -1.0,
    -0.3,
    -0.1,
    -0.03,
    -0.01,
    0.0,
    0.01,
    0.03,
    0.1,
    0.3,
    1.0,
    3.0,
    10.0,
)


def activation_kind(module: nn.Module) -> str | None:
    for cls in type(module).__mro__:
        if cls in ACTIVATION_KINDS:
            return ACTIVATION_KINDS[cls]
    return None


def histogram_edges(kind: str) -> tuple[float, ...]:
    """Fixed bin edges per kind (fixed so no min/max has to be read back from the device)."""
    if kind in ("tanh", "hardtanh", "softsign"):
        return tuple(-1.0 + 0.1 * i for i in range(21))
    if kind == "sigmoid":
        return tuple(0.05 * i for i in range(21))
    if kind == "gradient":  # log10 |g|
        return tuple(float(e) for e in range(-12, 3))
    return _SYMLOG_EDGES


def sample(x: torch.Tensor, max_elems: int) -> torch.Tensor:
    """Leading rows of ``x`` holding about ``max_elems`` values (a view: no copy)."""
    if x.dim() == 0:
        return x.reshape(1, 1)
    rows = x.shape[0]
    per_row = max(1, x.numel() // max(rows, 1))
    keep = max(1, min(rows, math.ceil(max_elems / per_row)))
    return x[:keep]


def activation_stats(x: torch.Tensor, kind: str, max_elems: int) -> torch.Tensor:
    """``[mean, std, saturated, dead, dead_units]`` of an activation output, as one tensor.

    saturated: |a| > 0.99 for tanh-like, a < 0.01 or a > 0.99 for sigmoid (NaN otherwise);
    dead: a <= 0; dead_units: fraction of units (channels for 4-D/5-D outputs, the last dim
    otherwise) never positive over the sampled rows.
    """
    s = sample(x.detach(), max_elems).float()
    flat = s.reshape(-1)
    positive = s > 0
    if s.dim() >= 4:
        alive = positive.transpose(0, 1).reshape(s.shape[1], -1).any(dim=1)
    else:
        alive = positive.reshape(-1, s.shape[-1]).any(dim=0)
    if kind in ("tanh", "hardtanh", "softsign"):
        saturated = (flat.abs() > 0.99).float().mean()
    elif kind == "sigmoid":
        saturated = ((flat < 0.01) | (flat > 0.99)).float().mean()
    else:
        saturated = torch.full((), float("nan"), device=flat.device)
    std = flat.std() if flat.numel() > 1 else torch.zeros((), device=flat.device)
    return torch.stack(
        [
            flat.mean(),
            std,
            saturated,
            (~positive).float().mean(),
            (~alive).float().mean(),
        ]
    )


def edge_tensor(kind: str, device: torch.device) -> torch.Tensor:
    """``histogram_edges(kind)`` as a float32 tensor on ``device`` (make it once, before training:
    building it copies from the host)."""
    return torch.tensor(histogram_edges(kind), device=device, dtype=torch.float32)


def histogram(values: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
    """Counts in ``len(edges) + 1`` bins (below the first edge, between edges, above the last).

    ``bucketize`` and ``scatter_add_`` need no host sync (``histc`` and ``bincount`` do).
    """
    idx = torch.bucketize(values.reshape(-1).float(), edges)
    counts = torch.zeros(edges.numel() + 1, device=values.device, dtype=torch.float32)
    return counts.scatter_add_(0, idx, torch.ones_like(idx, dtype=torch.float32))


def gradient_histogram(grad: torch.Tensor, max_elems: int, edges: torch.Tensor) -> torch.Tensor:
    """Histogram of log10 |g| over the first ``max_elems`` gradient values."""
    flat = grad.detach().reshape(-1)[:max_elems].float()
    return histogram(torch.log10(flat.abs() + 1e-30), edges)


def norms(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """L2 norms of a list of tensors, batched, as one float32 vector."""
    if not tensors:
        return torch.zeros(0)
    return torch.stack([n.float() for n in torch._foreach_norm(list(tensors))])
