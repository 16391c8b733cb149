"""RL104 init-scale-off."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from runlint.analysis.expected import init_scales
from runlint.check import Finding, Rule, Severity, option
from runlint.run import Run
from runlint.schema.meta import ParamInfo

_DENSE = {
    "Linear",
    "LazyLinear",
    "NonDynamicallyQuantizableLinear",
    "Bilinear",
    "Conv1d",
    "Conv2d",
    "Conv3d",
    "ConvTranspose1d",
    "ConvTranspose2d",
    "ConvTranspose3d",
    "LazyConv1d",
    "LazyConv2d",
    "LazyConv3d",
    "MultiheadAttention",
}


class InitScaleOff(Rule):
    """A dense or convolutional layer's weights start far from a fan-in-based scale.

    For each Linear / Conv / attention projection weight it compares the std at init
    (``meta.params[i].init_std``) with the usual scales: He √(2/fan_in) at the top, and
    PyTorch's default 1/√(3·fan_in) or Xavier √(2/(fan_in+fan_out)) at the bottom. Weights
    far above He blow activations up layer after layer (or saturate tanh); weights far below
    the default make signals and gradients vanish, and all-zero hidden weights never break the
    symmetry between units.

    ## Why it matters
    A bad init slows learning down or stops it before the optimizer can help; the seed's
    recipe is ``w = randn(n) * sqrt(2.0/n)``.

    ## Known problems
    - Embeddings (N(0, 1) is normal), LayerNorm/BatchNorm scales and biases are not judged.
    - A small or zero output layer is good practice (the initial loss is then ln C); only a
      too large output layer is flagged.
    - Deliberately tiny residual-branch inits (Fixup, GPT-2's 1/√(2N) scaling) can fall below
      the lower bound in very deep models; raise ``small_factor`` down for them.
    - Layers other than Linear/Conv/attention (LSTM, custom modules) are not judged.

    ## Fix
    Initialize ReLU layers with He (``nn.init.kaiming_normal_(w, nonlinearity="relu")``),
    tanh/sigmoid layers with Xavier (``nn.init.xavier_uniform_``), or keep PyTorch's default.

    ## Seed
    "权重初始化:w = np.random.randn(n) * sqrt(2.0/n) 从均值 0 方差 1 的高斯分布随机采样,然后用方差
    归一化。" and "错误初始化会减慢甚至停止学习过程。"
    """

    code = "RL104"
    name = "init-scale-off"
    severity = Severity.WARNING
    requires = ("meta.params",)

    @dataclass
    class Options(Rule.Options):
        large_factor: float = option(3.0, "init std above He √(2/fan_in) × this: too large")
        small_factor: float = option(
            0.05, "init std below min(PyTorch default, Xavier) × this: too small"
        )

    options: Options

    def check(self, run: Run) -> Iterator[Finding]:
        opts = self.options
        layers = [_layer(p) for p in run.setup.params]
        dense = [layer for layer in layers if layer is not None]
        if not dense:
            return
        head = dense[-1]["name"]
        large = [d for d in dense if d["std"] > opts.large_factor * d["he"]]
        small = [d for d in dense if d["name"] != head and d["std"] < opts.small_factor * d["low"]]
        if large:
            worst = max(large, key=lambda d: d["std"] / d["he"])
            ratio = worst["std"] / worst["he"]
            severity = self.severity  # a large start may still train: a warning at most
            yield self.finding(
                run,
                f"{len(large)} of {len(dense)} weight layers start too large: {worst['name']} "
                f"({worst['type']}, fan_in {worst['fan_in']}) has std {worst['std']:.3g}, "
                f"{ratio:.1f}× He √(2/fan_in) = {worst['he']:.3g}",
                _fix(worst["name"] == head, large=True),
                severity=severity,
                where=worst["name"],
                evidence=_evidence(large, worst),
            )
        if small:
            worst = min(small, key=lambda d: d["std"] / d["low"])
            zero = worst["std"] == 0.0
            severity = Severity.ERROR if zero else self.severity
            observed = (
                "is all zeros (units never break symmetry)"
                if zero
                else f"has std {worst['std']:.3g}, {worst['std'] / worst['low']:.3f}× the "
                f"smallest usual scale {worst['low']:.3g}"
            )
            yield self.finding(
                run,
                f"{len(small)} of {len(dense)} hidden weight layers start too small: "
                f"{worst['name']} ({worst['type']}, fan_in {worst['fan_in']}) {observed}",
                _fix(False, large=False),
                severity=severity,
                where=worst["name"],
                evidence=_evidence(small, worst),
            )


def _layer(info: ParamInfo) -> dict[str, Any] | None:
    """Scales of one dense weight from its ``meta.params`` entry, or None if not judged."""
    scales = init_scales(info)
    std = info.init_std
    if (
        info.module_type not in _DENSE
        or "weight" not in info.role
        or scales is None
        or std is None
        or not info.trainable
        or not math.isfinite(std)
    ):
        return None
    return {
        "name": info.name,
        "type": info.module_type,
        "fan_in": scales.fan_in,
        "std": std,
        "he": scales.he,
        "low": scales.smallest_usual,
    }


def _evidence(layers: list[dict[str, Any]], worst: dict[str, Any]) -> dict[str, Any]:
    return {
        "layers": {d["name"]: round(d["std"], 6) for d in layers},
        "worst": worst["name"],
        "std": worst["std"],
        "he_std": worst["he"],
        "fan_in": worst["fan_in"],
    }


def _fix(head: bool, *, large: bool) -> str:
    if head:
        return "scale the last layer's weights ×0.01 and zero its bias"
    if large:
        return (
            "initialize with He: nn.init.kaiming_normal_(w, nonlinearity='relu') "
            "(std √(2/fan_in)), or keep PyTorch's default init"
        )
    return (
        "initialize with He (std √(2/fan_in)) or Xavier instead of a fixed tiny std, "
        "or keep PyTorch's default init"
    )
