"""Loading factories: file and module references, accepted return shapes, one-line errors."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch import nn

from runlint.pretrain.factory import FactoryError, Spec, infer_loss_kind, load_spec, to_spec

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def _write(tmp_path: Path, body: str, name: str = "factory.py") -> Path:
    path = tmp_path / name
    header = "import torch\nfrom torch import nn\n"
    path.write_text(header + textwrap.dedent(body))
    return path


def test_file_reference_returns_a_spec() -> None:
    spec = load_spec(f"{EXAMPLES / 'mlp.py'}:make")
    assert isinstance(spec.model, nn.Module)
    assert spec.num_classes == 10
    assert spec.batch_size == 32


def test_function_name_defaults_to_make() -> None:
    spec = load_spec(str(EXAMPLES / "svm.py"))
    assert spec.loss_kind == "svm"


def test_dict_with_batch_pair_is_accepted() -> None:
    spec = load_spec(f"{EXAMPLES / 'cnn.py'}:make")
    assert spec.inputs.shape == (24, 1, 8, 8)
    assert spec.targets.shape == (24,)


def test_module_reference(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pkg = tmp_path / "mypkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    _write(
        pkg,
        """
        def build():
            return {"model": nn.Linear(3, 2), "loss": nn.CrossEntropyLoss(),
                    "inputs": torch.randn(4, 3), "targets": torch.tensor([0, 1, 0, 1])}
        """,
        "models.py",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = load_spec("mypkg.models:build")
    assert isinstance(spec.loss_fn, nn.CrossEntropyLoss)
    assert infer_loss_kind(spec) == "softmax"


def test_tuple_inputs_are_kept_as_a_tuple() -> None:
    spec = to_spec(
        {
            "model": nn.Bilinear(2, 3, 4),
            "loss_fn": nn.CrossEntropyLoss(),
            "inputs": (torch.randn(5, 2), torch.randn(5, 3)),
            "targets": torch.zeros(5, dtype=torch.long),
        }
    )
    assert len(spec.input_tuple) == 2


def _good() -> dict[str, object]:
    return {
        "model": nn.Linear(3, 2),
        "loss_fn": nn.CrossEntropyLoss(),
        "inputs": torch.randn(4, 3),
        "targets": torch.tensor([0, 1, 0, 1]),
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"model": "not a model"}, "not a torch.nn.Module"),
        ({"loss_fn": 3}, "loss_fn is not callable"),
        ({"targets": torch.tensor([0, 1])}, "share batch dimension 0"),
        ({"inputs": [1, 2]}, "inputs must be a tensor"),
        ({"loss_kind": "hinge"}, "loss_kind 'hinge' is not one of"),
        ({"num_classes": 1}, "num_classes must be an integer >= 2"),
        ({"regularization": 0.1}, "regularization must be a callable"),
        ({"colour": "red"}, "unknown key(s) colour"),
        ({"batch": (torch.randn(4, 3),)}, "'batch' must be a pair"),
    ],
)
def test_bad_dicts_are_rejected_with_one_line(change: dict[str, object], message: str) -> None:
    data = {**_good(), **change}
    if "batch" in change:
        del data["inputs"], data["targets"]
    with pytest.raises(FactoryError, match=message.replace("(", r"\(").replace(")", r"\)")) as err:
        to_spec(data, "f.py:make")
    assert "\n" not in str(err.value)


def test_missing_keys_are_named() -> None:
    with pytest.raises(FactoryError, match="without loss_fn, targets"):
        to_spec({"model": nn.Linear(2, 2), "inputs": torch.randn(2, 2)})


def test_wrong_return_type_is_rejected() -> None:
    with pytest.raises(FactoryError, match=r"returned tuple; expected runlint\.factory\.Spec"):
        to_spec((nn.Linear(2, 2), nn.MSELoss()))


def test_frozen_model_is_rejected() -> None:
    model = nn.Linear(3, 2).requires_grad_(False)
    with pytest.raises(FactoryError, match="no parameters that require gradients"):
        to_spec({**_good(), "model": model})


def test_spec_dataclass_is_accepted_as_is() -> None:
    spec = Spec(nn.Linear(3, 2), nn.MSELoss(), torch.randn(4, 3), torch.randn(4, 2))
    assert to_spec(spec) is spec
    assert infer_loss_kind(spec) == "regression"


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("does/not/exist.py:make", "no such file"),
        ("no_such_module_xyz:make", "cannot import no_such_module_xyz"),
        ("EXAMPLES/mlp.py:nope", "has no function 'nope'"),
        ("EXAMPLES/mlp.py:torch", "is not callable"),
    ],
)
def test_bad_references(ref: str, message: str) -> None:
    with pytest.raises(FactoryError, match=message):
        load_spec(ref.replace("EXAMPLES", str(EXAMPLES)))


def test_factory_that_raises_is_reported(tmp_path: Path) -> None:
    path = _write(tmp_path, "def make():\n    raise ValueError('no data here')\n")
    with pytest.raises(FactoryError, match="raised ValueError: no data here"):
        load_spec(f"{path}:make")


def test_file_with_syntax_error_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "broken.py"
    path.write_text("def make(:\n")
    with pytest.raises(FactoryError, match=r"importing .*broken\.py failed: SyntaxError"):
        load_spec(f"{path}:make")


def test_cli_bad_spec_is_one_line_exit_2(tmp_path: Path) -> None:
    path = _write(tmp_path, "def make():\n    return (1, 2, 3)\n")
    proc = subprocess.run(
        [sys.executable, "-m", "runlint", "sanity", f"{path}:make"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("runlint: error: ")
    assert "returned tuple" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "Traceback" not in proc.stderr
