"""On-device statistics the recorder takes. Every function returns a device tensor: no host sync."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
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

#: Columns of the activation table, as ``finish_activation_stats`` returns them.
ACTIVATION_COLUMNS = ("mean", "std", "saturated", "dead", "dead_units")

#: Kinds with a saturated fraction: |a| > 0.99 ("abs") or a < 0.01 or a > 0.99 ("ends").
SATURATING = {"tanh": "abs", "hardtanh": "abs", "softsign": "abs", "sigmoid": "ends"}

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


def sample_rows(x: torch.Tensor, max_elems: int) -> int:
    """How many leading rows of ``x`` hold about ``max_elems`` values (at least one)."""
    rows = x.shape[0]
    per_row = max(1, x.numel() // max(rows, 1))
    return max(1, min(rows, math.ceil(max_elems / per_row)))


def activation_sample(x: torch.Tensor, max_elems: int) -> torch.Tensor:
    """A float32 copy of the leading rows of ``x`` (about ``max_elems`` values): one kernel.

    ``x.data`` is an alias outside autograd that costs no dispatcher call (``detach`` does).
    """
    x = x.data
    if x.dim() == 0:
        x = x.reshape(1, 1)
        return x.clone() if x.dtype == torch.float32 else x.float()
    keep = sample_rows(x, max_elems)
    if x.dtype == torch.float32:
        return torch.narrow_copy(x, 0, 0, keep)
    return x[:keep].float()


def update_sample(p: torch.Tensor, max_elems: int) -> torch.Tensor:
    """The values of parameter ``p`` whose change stands for its update: all of them, or for a
    contiguous ``p`` with more than ``max_elems`` values every k-th one (a view of about
    ``max_elems`` values; k is prime to the row length, so every column is sampled).

    The update norm is the sample's times sqrt(numel / sampled): copying and differencing the
    whole of a large parameter each statistics step costs more memory traffic than the
    gradient and parameter norms together.
    """
    n = p.numel()
    if n <= max_elems or not p.is_contiguous():
        return p
    step = math.ceil(n / max_elems)
    row = n // p.shape[0]
    while math.gcd(step, row) != 1:  # so the sample falls in every column, not a few
        step += 1
    return p.view(-1)[::step]


def activation_stats(samples: torch.Tensor, kind: str) -> tuple[torch.Tensor, int]:
    """Raw statistics of ``A`` activation samples of one shape and kind, stacked as ``[A, ...]``.

    Returns ``(stats, units)``. ``stats`` is ``[A, k]``, per sample: its first value ``c``, the
    sum and the L2 norm of ``a - c`` (mean and std follow on the host, shifted by ``c`` so
    that a large mean does not cancel the variance away), the count of values > 0, the count of
    units (channels of 4-D/5-D outputs, the last dim otherwise) positive at least once and, for
    the kinds in ``SATURATING``, the count of saturated values (|a| > 0.99 for tanh-like, a <
    0.01 or a > 0.99 for sigmoid). ``units`` is the number of units per sample;
    ``finish_activation_stats`` makes the ``ACTIVATION_COLUMNS`` on the host.

    ``samples`` (contiguous) is overwritten: it and one scratch tensor of its size are all the
    memory this takes, since fresh large temporaries cost page faults on CPU. About a dozen
    kernels for all ``A`` samples together, no host sync. Counts are sums of ``sign(...)``
    clamped at 0 (exact; NaN counts as not positive): reductions over boolean tensors and
    ``std`` are several times slower on CPU.
    """
    a = samples.shape[0]
    flat = samples.view(a, -1)
    if samples.dim() >= 5:  # [A, rows, channels, ...]
        units = samples.shape[2]
        peak = samples.transpose(1, 2).reshape(a, units, -1).amax(dim=2)
    else:
        units = samples.shape[-1]
        peak = samples.view(a, -1, units).amax(dim=1)
    scratch = torch.empty_like(flat)
    alive = _count_positive(peak)
    positive = _count_positive(torch.sign(flat, out=scratch))
    saturated = []
    saturates = SATURATING.get(kind)
    if saturates == "abs":
        saturated.append(_count_positive(torch.abs(flat, out=scratch).sub_(0.99)))
    elif saturates == "ends":
        high = _count_positive(torch.sub(flat, 0.99, out=scratch))
        low = _count_positive(torch.mul(flat, -1.0, out=scratch).add_(0.01))
        saturated.append(high + low)
    shift = flat[:, 0].clone()
    centered = flat.sub_(shift.unsqueeze(1))
    columns = [
        shift,
        centered.sum(dim=1),
        torch.linalg.vector_norm(centered, dim=1),
        positive,
        alive,
        *saturated,
    ]
    return torch.stack(columns, dim=1), units


def _count_positive(x: torch.Tensor) -> torch.Tensor:
    """Per row, how many values of the 2-D ``x`` are > 0 (a float tensor); ``x`` is changed."""
    return x.sign_().clamp_(min=0).sum(dim=1)


def finish_activation_stats(
    raw: np.ndarray, width: np.ndarray, n: np.ndarray, units: np.ndarray
) -> dict[str, np.ndarray]:
    """The ``ACTIVATION_COLUMNS`` of rows of ``activation_stats`` read back to the host.

    ``raw`` is ``[rows, 6]`` (the sixth value is read only where ``width`` is 6: kinds without
    a saturated count have 5); ``n`` is the number of values in each sample and ``units`` its
    number of units.
    """
    raw = raw.astype(np.float64)
    shift, total, norm, positive, alive = raw[:, :5].T
    n = n.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        var = (norm * norm - total * total / n) / (n - 1)
        std = np.where(var > 0, np.sqrt(np.maximum(var, 0)), np.where(np.isnan(var), np.nan, 0.0))
        stats = {
            "mean": shift + total / n,
            "std": np.where(n > 1, std, 0.0),
            "saturated": np.where(width > 5, raw[:, 5] / n, math.nan),
            "dead": 1.0 - positive / n,
            "dead_units": 1.0 - alive / units,
        }
    assert tuple(stats) == ACTIVATION_COLUMNS
    return stats


#: The ``outputs`` statistics, in the order ``output_stats`` stacks them.
OUTPUT_COLUMNS = (
    "mean",
    "std",
    "min",
    "max",
    "row_sum",
    "row_logsumexp",
    "batch_std",
    "unit_fraction",
    "grad_row_shift",
    "grad_sigmoid_fit",
    "grad_col_shift",
)


def output_rows(out: torch.Tensor, max_elems: int) -> torch.Tensor:
    """A float32 copy of the model's output (or of the loss's gradient at it) as ``(rows,
    width)`` (leading dimensions flattened; a ``(B,)`` output is width 1): its leading rows,
    about ``max_elems`` values.

    A copy, so that keeping it until the flush does not keep the whole output alive.
    """
    x = out.data
    x = x.reshape(-1, 1) if x.dim() <= 1 else x.reshape(-1, x.shape[-1])
    rows = max(1, min(x.shape[0], max_elems // max(1, x.shape[1])))
    if x.dtype == torch.float32:
        return torch.narrow_copy(x, 0, 0, rows)
    return x[:rows].float()


def output_stats(x: torch.Tensor, g: torch.Tensor, col_shift: torch.Tensor) -> torch.Tensor:
    """``OUTPUT_COLUMNS`` of ``N`` samples of one shape (``output_rows``), stacked as
    ``[N, rows, width]``, and of the loss's gradient at them ``g`` (the same shape; NaN where
    none reached the output) with its ``column_shift`` over the whole output ``col_shift``
    (``[N]``): ``[N, len(OUTPUT_COLUMNS)]`` on their device.

    A few dozen kernels for all the samples of a flush together (statistics steps only copy
    the rows): ``std_mean`` and ``aminmax`` give two values each, the mean row sum is the mean
    times the width, and the fraction inside [0, 1] is ``clamp(x, 0, 1) == x`` written over
    the clamped copy. The gradient's two signatures tell what the loss does with the output
    (see ``gradient_signatures``).
    """
    n, rows, width = x.shape
    flat = x.reshape(n, -1)
    nan = torch.full((n,), float("nan"), device=x.device)
    if flat.shape[1] > 1:
        spread, mean = torch.std_mean(flat, dim=1)
    else:
        spread, mean = nan, flat.mean(dim=1)
    lo, hi = torch.aminmax(flat, dim=1)
    across = x.std(dim=1).mean(dim=1) if rows > 1 else nan
    inside = x.clamp(0.0, 1.0).eq_(x).reshape(n, -1).mean(dim=1)
    row_sum = mean * width
    row_logsumexp = torch.logsumexp(x, dim=2).mean(dim=1)
    shift, fit = gradient_signatures(x, g)
    return torch.stack(
        [mean, spread, lo, hi, row_sum, row_logsumexp, across, inside, shift, fit, col_shift],
        dim=1,
    )


def column_shift(grad: torch.Tensor) -> torch.Tensor:
    """The largest over output units (the last dimension) of |Σ g| / Σ |g| over every example
    of the pass, as a 0-d float32 tensor: about 0 when the loss does not change as a unit's
    score is shifted by one constant for the whole batch (a softmax over the batch dimension);
    a unit with no gradient counts as 1; NaN for width 1 or a single row."""
    g = grad.detach()
    if g.dim() < 2 or g.shape[-1] < 2 or g.numel() == g.shape[-1]:
        return torch.full((), float("nan"), device=g.device)
    g = g.reshape(-1, g.shape[-1]).float()
    mass = g.abs().sum(dim=0)
    ratio = torch.where(mass > 0, g.sum(dim=0).abs() / mass, torch.ones_like(mass))
    return ratio.amax()


def gradient_signatures(x: torch.Tensor, g: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Two signatures of the loss, read from its gradient ``g`` at the output ``x`` (both
    ``[N, rows, width]``), each ``[N]``, about 0 when the loss has that form:

    - row shift, the largest over rows of |Σ g| / Σ |g|: a loss of ``softmax(x)`` does not
      change when a row of ``x`` is shifted by a constant, so each row of its gradient sums
      to 0 (cross-entropy with weights or label smoothing too); a row with no gradient counts
      as 1, and width 1 is NaN.
    - sigmoid fit, std / |mean| of g / (σ(x) − y) with y = [g < 0]: the binary cross-entropy
      of ``sigmoid(x)`` has g = c·(σ(x) − y), one c > 0 for every value, when the targets are
      0 or 1. Values with g = 0 are left out.
    """
    n, _, width = x.shape
    if width > 1:
        mass = g.abs().sum(dim=2)
        ratio = torch.where(mass > 0, g.sum(dim=2).abs() / mass, torch.ones_like(mass))
        shift = ratio.amax(dim=1)
    else:
        shift = torch.full((n,), float("nan"), device=x.device)
    r = g / (torch.sigmoid(x) - (g < 0).float())
    kept = (g != 0).float()
    count = kept.sum(dim=(1, 2))
    mean = (r * kept).sum(dim=(1, 2)) / count
    spread = (((r - mean[:, None, None]) * kept) ** 2).sum(dim=(1, 2)) / count
    return shift, spread.sqrt() / mean.abs()


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


def gradient_histograms(
    grads: Sequence[torch.Tensor], edges: torch.Tensor, base: torch.Tensor, ones: torch.Tensor
) -> torch.Tensor:
    """``gradient_histogram`` of many gradients at once, as one ``[len(grads) * bins]`` vector.

    ``grads`` are the leading values of each gradient (flat); ``base`` holds, per value, the
    offset ``i * bins`` of its gradient's bins and ``ones`` is a vector of ones as long (both made
    once, before training). A handful of kernels for all the parameters together.
    """
    flat = torch.cat(list(grads)).float()
    idx = torch.bucketize(flat.abs_().add_(1e-30).log10_(), edges)
    counts = torch.zeros(len(grads) * (edges.numel() + 1), device=flat.device)
    return counts.scatter_add_(0, idx.add_(base), ones)


def norms(tensors: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """L2 norms of a list of tensors with one batched kernel, as 0-d tensors (stack them once)."""
    if not tensors:
        return []
    return list(torch._foreach_norm(list(tensors)))


#: Input values an example's fingerprint reads (evenly spaced over the flattened example): enough
#: to tell real examples apart, few enough that fingerprinting a batch costs less than one layer.
FINGERPRINT_VALUES = 512

_MASK24 = (1 << 24) - 1  # a 24-bit integer survives the stash's float32 exactly
_GOLDEN = -7046029254386353131  # 0x9E3779B97F4A7C15 as a signed 64-bit integer
_MIX = -4658895280553007687  # 0xBF58476D1CE4E5B9 and 0x94D049BB133111EB, splitmix64's
_MIX2 = -7723592293110705685  # multipliers, as signed 64-bit integers


def fingerprints(x: torch.Tensor, rows: int) -> torch.Tensor:
    """A 48-bit fingerprint of each of the first ``rows`` examples of ``x`` (one per row of its
    first dimension), as ``(rows, 2)`` float32 halves of 24 bits.

    The same values give the same fingerprint on every device and batch size: each value's
    bits (floats as float32), with its position, go through splitmix64's finalizer and the
    results are summed with 64-bit wrap-around, which no summation order changes.
    """
    flat = x.detach()[:rows].reshape(rows, -1)
    width = flat.shape[1]
    if width > FINGERPRINT_VALUES:
        picks = torch.linspace(0, width - 1, FINGERPRINT_VALUES, device=flat.device).long()
        flat = flat.index_select(1, picks)
        width = FINGERPRINT_VALUES
    bits = flat.float().view(torch.int32).long() if flat.is_floating_point() else flat.long()
    where = torch.arange(1, width + 1, device=flat.device, dtype=torch.int64) * _GOLDEN
    h = _mix(_mix(bits + where)).sum(1)
    return torch.stack([(h >> 16) & _MASK24, (h >> 40) & _MASK24], 1).float()


def _mix(z: torch.Tensor) -> torch.Tensor:
    """splitmix64's finalizer (its first two rounds) on int64 values, wrapping."""
    z = (z ^ (z >> 30)) * _MIX
    return (z ^ (z >> 27)) * _MIX2
