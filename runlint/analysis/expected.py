"""What a run should look like at its start: the chance loss of an untrained classifier and the
usual initialization scales of a weight. Torch-free; shared by the rules and ``runlint sanity``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from runlint.schema.meta import ParamInfo, Setup

__all__ = [
    "BINARY",
    "SOFTMAX",
    "SVM",
    "Chance",
    "InitScales",
    "chance_loss",
    "init_scales",
    "is_classification",
    "output_layer",
]

#: Loss names (``meta.loss``, lower case) of a softmax classifier: diffuse scores give ln(C).
SOFTMAX_LOSSES = frozenset(
    {"cross_entropy", "ce", "nll", "softmax", "categorical_cross_entropy", "log_softmax"}
)
#: ... of a multiclass SVM: diffuse scores give C − 1 (PyTorch's ``multi_margin``: (C − 1)/C).
SVM_LOSSES = frozenset({"multi_margin", "svm", "hinge", "multiclass_hinge", "multi_margin_sum"})
#: ... of a binary classifier with one logit: ln(2).
BINARY_LOSSES = frozenset(
    {"bce", "binary_cross_entropy", "bce_with_logits", "binary_cross_entropy_with_logits"}
)
CLASSIFICATION_LOSSES = SOFTMAX_LOSSES | SVM_LOSSES | BINARY_LOSSES
#: Regression losses by how they grow with the error: squared, or absolute (Huber for large
#: errors, where unscaled targets put it).
SQUARED_LOSSES = frozenset({"mse", "l2", "mean_squared_error"})
ABSOLUTE_LOSSES = frozenset({"l1", "mae", "huber", "smooth_l1", "mean_absolute_error"})
REGRESSION_LOSSES = SQUARED_LOSSES | ABSOLUTE_LOSSES

SOFTMAX, SVM, BINARY = "softmax", "multiclass SVM", "binary classifier"


@dataclass(frozen=True)
class Chance:
    """The loss of a classifier whose scores are all equal: its value, formula and kind."""

    value: float
    formula: str  # "ln(10)", "C−1 = 10−1", "(10−1)/10", "ln(2)"
    kind: str  # SOFTMAX, SVM or BINARY
    classes: int


def is_classification(setup: Setup) -> bool:
    """Whether the run's loss is a classification loss, or not named (assumed softmax)."""
    return setup.loss is None or setup.loss in CLASSIFICATION_LOSSES


def chance_loss(setup: Setup) -> Chance | None:
    """The chance loss of the run's classifier: ``None`` without ``num_classes``, for a
    regression loss, or for fewer than 2 classes (but a binary loss with one output).

    An unnamed loss is taken for the softmax cross-entropy, the common case.
    """
    classes, loss = setup.num_classes, setup.loss or "cross_entropy"
    if classes is None or loss not in CLASSIFICATION_LOSSES:
        return None
    if loss in BINARY_LOSSES:
        return Chance(math.log(2), "ln(2)", BINARY, classes)
    if classes < 2:
        return None
    if loss in SVM_LOSSES:
        if loss == "multi_margin":  # PyTorch divides the hinge sum by C
            return Chance((classes - 1) / classes, f"({classes}−1)/{classes}", SVM, classes)
        return Chance(float(classes - 1), f"C−1 = {classes}−1", SVM, classes)
    return Chance(math.log(classes), f"ln({classes})", SOFTMAX, classes)


@dataclass(frozen=True)
class InitScales:
    """The usual init stds of a weight with these fans (the seed: ``randn(n) * sqrt(2/n)``)."""

    fan_in: int
    fan_out: int

    @property
    def he(self) -> float:
        """He (Kaiming) for ReLU: √(2/fan_in)."""
        return math.sqrt(2.0 / self.fan_in)

    @property
    def pytorch_default(self) -> float:
        """PyTorch's Linear/Conv default (kaiming_uniform with a=√5): 1/√(3·fan_in)."""
        return 1.0 / math.sqrt(3.0 * self.fan_in)

    @property
    def lecun(self) -> float:
        """LeCun: √(1/fan_in)."""
        return math.sqrt(1.0 / self.fan_in)

    @property
    def xavier(self) -> float:
        """Xavier (Glorot): √(2/(fan_in+fan_out))."""
        return math.sqrt(2.0 / (self.fan_in + self.fan_out))

    @property
    def smallest_usual(self) -> float:
        """The smaller of PyTorch's default and Xavier: the low end of a usual init."""
        return min(self.pytorch_default, self.xavier)

    def named(self) -> dict[str, float]:
        """Every scale, by the name a message shows."""
        return {
            "PyTorch default 1/√(3·fan_in)": self.pytorch_default,
            "He scale √(2/fan_in)": self.he,
            "LeCun scale √(1/fan_in)": self.lecun,
            "Xavier scale √(2/(fan_in+fan_out))": self.xavier,
        }


def init_scales(param: ParamInfo) -> InitScales | None:
    """The init scales of a weight of two or more dimensions (``None`` otherwise)."""
    shape = param.shape or ()
    if len(shape) < 2:
        return None
    fan_in = int(param.fan_in or math.prod(shape[1:]))
    fan_out = int(shape[0] * math.prod(shape[2:]))
    if fan_in <= 0 or fan_out <= 0:
        return None
    return InitScales(fan_in, fan_out)


#: Module types whose 2-D weight is a lookup table, not a layer with a fan-in.
EMBEDDING_TYPES = frozenset({"Embedding", "EmbeddingBag"})


def output_layer(setup: Setup) -> tuple[ParamInfo, InitScales] | None:
    """The output layer's weight (the last weight of 2+ dimensions with an init std that is not
    an embedding) and its scales, or ``None``."""
    weights = [
        p
        for p in setup.params
        if len(p.shape or ()) >= 2
        and p.init_std is not None
        and p.module_type not in EMBEDDING_TYPES
    ]
    if not weights:
        return None
    scales = init_scales(weights[-1])
    return (weights[-1], scales) if scales is not None else None
