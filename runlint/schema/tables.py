"""The tables of a run: their columns as written on disk and as the ``Run`` views show them.

Every table is long (tidy): a row per step (and per group, parameter, module, ...). The
recorder writes these names, the loader and the importers read them, rules name them in
``requires`` (``"steps.loss"``), and ``docs/format.md`` is generated from them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "ACTIVATIONS",
    "EPOCHS",
    "EXAMPLES",
    "GROUPS",
    "HISTOGRAMS",
    "OUTPUTS",
    "PARAMS",
    "STEPS",
    "TABLES",
    "WEIGHTS",
    "ColumnSpec",
    "TableSpec",
]


@dataclass(frozen=True)
class ColumnSpec:
    """One column: its name, its Arrow type on disk, what it holds.

    ``aliases`` are other names loggers use for the same signal in an open table (a view's
    column is found under its own name first, then under each alias in order). ``absent`` says
    what it means when no row has a value, for a column only some rows can have.
    """

    name: str
    type: str
    doc: str
    aliases: tuple[str, ...] = ()
    absent: str = ""


@dataclass(frozen=True)
class TableSpec:
    """One table: when it is written, its key, and its columns.

    ``keys`` identify a row of the view (ranks and gradient-accumulation micro-steps are
    averaged over them). An ``open`` table also holds columns not listed (every scalar given to
    ``rec.log``); ``open`` says which. ``joins`` are tables whose values the view shows too
    (``steps`` shows the learning rate and the other settings of param group 0).
    """

    name: str
    written: str
    keys: tuple[str, ...]
    columns: tuple[ColumnSpec, ...]
    open: str = ""
    joins: tuple[str, ...] = ()
    index: bool = field(default=False)  # the view is indexed by its keys (steps, epochs)

    def column(self, name: str) -> ColumnSpec | None:
        return next((c for c in self.columns if c.name == name), None)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


def _col(name: str, type_: str, doc: str, *aliases: str) -> ColumnSpec:
    return ColumnSpec(name, type_, doc, aliases)


STEP = _col("step", "int64", "optimizer steps completed before the row, from 0")
RANK = _col("rank", "int64", "the `torch.distributed` rank that wrote the row (0 alone)")
F64 = "float64"

STEPS = TableSpec(
    "steps",
    "every `rec.log` call",
    keys=("step",),
    index=True,
    open="every scalar given to `rec.log`",
    joins=("groups",),
    columns=(
        STEP,
        RANK,
        _col("micro", "int64", "call number within the step (gradient-accumulation micro-batches)"),
        _col("time", F64, "Unix seconds"),
        _col("loss", F64, "the training loss of the step (`rec.log(loss=...)`)"),
        _col("data_loss", F64, "the data term of the loss, when logged apart"),
        _col("reg_loss", F64, "the regularization term of the loss, when logged apart"),
        _col("grad_norm", F64, "a total gradient norm logged by the training code"),
    ),
)

GROUPS = TableSpec(
    "groups",
    "every optimizer step, per param group",
    keys=("step", "group"),
    columns=(
        STEP,
        RANK,
        _col("group", "int64", "index of the param group"),
        *(
            _col(key, F64, f"`{key}` of the param group, where the optimizer has it")
            for key in (
                "lr",
                "momentum",
                "dampening",
                "weight_decay",
                "eps",
                "alpha",
                "lr_decay",
                "initial_accumulator_value",
            )
        ),
        _col("nesterov", F64, "`nesterov` (0/1), where the optimizer has it"),
        _col("amsgrad", F64, "`amsgrad` (0/1), where the optimizer has it"),
        _col("beta1", F64, "first of `betas` (Adam family)"),
        _col("beta2", F64, "second of `betas` (Adam family)"),
    ),
)

#: The settings of a param group the recorder reads (``betas`` is written as beta1, beta2).
GROUP_SETTINGS = tuple(
    c.name for c in GROUPS.columns if c.name not in ("step", "rank", "group", "beta1", "beta2")
)

PARAMS = TableSpec(
    "params",
    "every `stats_every` steps, per parameter",
    keys=("step", "param"),
    columns=(
        STEP,
        RANK,
        _col("param", "string", "parameter name (`model.named_parameters()`)"),
        _col(
            "grad_norm",
            F64,
            "L2 norm of the gradient the optimizer used (after DDP averaging and AMP "
            "unscaling); NaN without gradient",
        ),
        _col("param_norm", F64, "L2 norm of the parameter after the step"),
        _col(
            "update_norm",
            F64,
            "‖θ_after − θ_before‖: exact for a parameter of at most `max_elems` values, else "
            "measured on a strided sample of about `max_elems` of them and scaled by "
            "√(numel / sample)",
        ),
        _col("update_ratio", F64, "`update_norm / param_norm`"),
    ),
)

ACTIVATIONS = TableSpec(
    "activations",
    "every `stats_every` steps, per activation module and forward call",
    keys=("step", "module", "kind"),
    columns=(
        STEP,
        RANK,
        _col("module", "string", "module name"),
        _col("kind", "string", "activation kind (`relu`, `tanh`, `sigmoid`, `gelu`, ...)"),
        _col("mean", F64, "mean of the sampled outputs"),
        _col("std", F64, "standard deviation of the sampled outputs"),
        ColumnSpec(
            "saturated",
            F64,
            "fraction \\|a\\|>0.99 for tanh-like, a<0.01 or a>0.99 for sigmoid; NaN for other "
            "kinds",
            absent="no tanh/sigmoid/hardtanh/softsign activation module recorded",
        ),
        _col("dead", F64, "fraction a≤0"),
        _col(
            "dead_units",
            F64,
            "fraction of units (channels of 4-D/5-D outputs, else the last dim) never positive "
            "in the sample",
        ),
    ),
)

HISTOGRAMS = TableSpec(
    "histograms",
    "every `hist_every` steps",
    keys=("step", "source", "name"),
    columns=(
        STEP,
        RANK,
        _col("source", "string", "`activation` or `gradient`"),
        _col("name", "string", "module or parameter"),
        _col(
            "edges",
            "list<float64>",
            "bin edges, fixed per kind; gradients are binned by log10 \\|g\\|",
        ),
        _col(
            "counts",
            "list<float64>",
            "`len(edges)+1` bins: below the first edge, between edges, above the last",
        ),
    ),
)

WEIGHTS = TableSpec(
    "weights",
    "step 0, every `weights_every` steps and the last step",
    keys=("step", "param"),
    columns=(
        STEP,
        RANK,
        _col("param", "string", "the first Linear/Conv/Embedding weight"),
        _col("shape", "list<int64>", "[rows, cols] after flattening; at most 64×1024"),
        _col("values", "list<float64>", "row-major values"),
    ),
)

OUTPUTS = TableSpec(
    "outputs",
    "every `stats_every` steps, per training forward pass: the model's output (what the loss "
    "is fed), on a sample of its leading rows",
    keys=("step",),
    index=True,
    columns=(
        STEP,
        RANK,
        _col("width", "int64", "size of the output's last dimension (1 for a `(B,)` output)"),
        _col("rows", "int64", "rows sampled (all leading dimensions flattened)"),
        _col("mean", F64, "mean of the output"),
        _col("std", F64, "standard deviation of the output"),
        _col("min", F64, "smallest value"),
        _col("max", F64, "largest value"),
        _col(
            "row_sum", F64, "mean over rows of the sum over the last dimension (probabilities: 1)"
        ),
        _col(
            "row_logsumexp",
            F64,
            "mean over rows of logsumexp over the last dimension (log-probabilities: 0)",
        ),
        _col(
            "batch_std",
            F64,
            "mean over the output's units of their std across rows (≈ 0: every example gets the "
            "same prediction)",
        ),
        _col("unit_fraction", F64, "fraction of values in [0, 1]"),
        _col(
            "grad_row_shift",
            F64,
            "largest over rows of |Σ g| / Σ |g|, g the loss's gradient at the output (≈ 0: the "
            "loss takes a softmax of the output); NaN: width 1, or no gradient reached it",
        ),
        _col(
            "grad_sigmoid_fit",
            F64,
            "std / |mean| of g / (σ(output) − [g < 0]) (≈ 0: the loss is a binary "
            "cross-entropy of the output's sigmoid); NaN: no gradient reached it",
        ),
        _col(
            "grad_col_shift",
            F64,
            "largest over output units of |Σ g| / Σ |g| over all the pass's examples (≈ 0: the "
            "loss takes a softmax over the batch); NaN: width 1, one row, or no gradient",
        ),
    ),
)

EXAMPLES = TableSpec(
    "examples",
    "per forward pass (every example of a training pass, the first 16 of any other), until "
    "32768 training and 8192 evaluation examples are in (`Examples.TRAIN_EXAMPLES`, "
    "`EVAL_EXAMPLES`): a fingerprint of each example the model was fed, a training example "
    "once (nothing of its values can be read back)",
    keys=("step", "phase"),
    columns=(
        STEP,
        RANK,
        _col(
            "phase",
            "string",
            "`train` (the model in training mode with gradients on) or `eval` (any other pass)",
        ),
        _col(
            "fingerprint",
            "int64",
            "48-bit hash of the example's input values (at most 512 of them, evenly spaced): "
            "equal inputs, equal fingerprints",
        ),
    ),
)

EPOCHS = TableSpec(
    "epochs",
    "every `rec.log_epoch`",
    keys=("epoch",),
    index=True,
    open="every metric given to `rec.log_epoch`",
    columns=(
        _col("epoch", "int64", "epoch number, from 0"),
        STEP,
        RANK,
        _col(
            "elapsed_epochs",
            F64,
            "epochs of training done when the row was logged: fractional for an evaluation in "
            "mid-epoch (imported logs); for `rec.log_epoch` rows the epoch number + 1",
        ),
        _col("train_loss", F64, "training loss of the epoch"),
        _col("train_acc", F64, "training accuracy", "train_accuracy", "acc", "accuracy"),
        _col("val_loss", F64, "validation loss", "valid_loss", "eval_loss", "test_loss"),
        _col(
            "val_acc",
            F64,
            "validation accuracy",
            "val_accuracy",
            "valid_acc",
            "eval_acc",
            "eval_accuracy",
            "test_acc",
        ),
    ),
)

#: Every table, in the order a run directory lists them.
TABLES: dict[str, TableSpec] = {
    t.name: t
    for t in (STEPS, GROUPS, PARAMS, ACTIVATIONS, HISTOGRAMS, WEIGHTS, OUTPUTS, EXAMPLES, EPOCHS)
}

#: Columns of the raw tables that the views average over.
AVERAGED = ("rank", "micro")


def view_columns(table: TableSpec) -> dict[str, ColumnSpec]:
    """The columns a ``Run`` view of ``table`` shows: its own and its joins', by name."""
    out = {c.name: c for c in table.columns if c.name not in AVERAGED}
    for joined in table.joins:
        for c in TABLES[joined].columns:
            if c.name not in TABLES[joined].keys and c.name not in AVERAGED:
                out.setdefault(c.name, c)
    return out
