"""Runs in object storage: ``runlint check`` and ``runlint sweep`` on ``s3://`` URLs, read from
a real S3-compatible server (moto's, started here on a free loopback port) through s3fs and
botocore, never a mock of the client. Each check is compared with the same check of the same
runs on local disk."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers_cli import ROOT, invoke
from helpers_sweep import CORPUS

moto_server = pytest.importorskip("moto.server", reason="the S3 tests need moto[server] (dev)")
pytest.importorskip("s3fs", reason="reading s3:// URLs needs runlint[s3]")
boto3 = pytest.importorskip("boto3")

BUCKET = "runs"
HEALTHY, FAULTY, HF = "spiral-mlp-sgd-momentum", "rl101-last-layer-x50", "rl202-hf-adamw-lr-x500"
#: Runs of one search: recorded runs with epochs of validation loss and their own learning rate.
SWEEP_RUNS = (
    "spiral-mlp-sgd-momentum",
    "spiral-mlp-rmsprop-dropout",
    "blobs-mlp-adam-cosine",
    "blobs-mlp-adagrad",
    "blobs-mlp-batch-512",
    "rl202-lr-x5",
)


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A moto S3 server on 127.0.0.1 and the environment that points botocore at it (fake
    credentials, no AWS config files), with the bucket ``runs`` created."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    empty = tmp_path_factory.mktemp("aws") / "none"
    env = {
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(empty),
        "AWS_SHARED_CREDENTIALS_FILE": str(empty),
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    mp = pytest.MonkeyPatch()
    for key, value in env.items():
        mp.setenv(key, value)
    mp.delenv("AWS_PROFILE", raising=False)
    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    try:
        yield env
    finally:
        mp.undo()
        server.stop()


def upload(folder: Path, prefix: str) -> None:
    """Every file below ``folder`` to ``s3://runs/<prefix>/...``, with boto3."""
    client = boto3.client("s3")
    for file in sorted(folder.rglob("*")):
        if file.is_file():
            key = f"{prefix}/{file.relative_to(folder).as_posix()}"
            client.upload_file(str(file), BUCKET, key)


def check_json(*targets: str, extra: tuple[str, ...] = ()) -> tuple[int, dict[str, Any]]:
    result = invoke("check", *targets, "--format", "json", *extra)
    return result.exit_code, json.loads(result.stdout)


def codes_by_run(doc: dict[str, Any]) -> dict[str, list[str]]:
    """Each run's name (its last path component) and the codes found in it, sorted."""
    out: dict[str, list[str]] = {r["path"].rstrip("/").rsplit("/", 1)[-1]: [] for r in doc["runs"]}
    for f in doc["findings"]:
        out[f["run"].rstrip("/").rsplit("/", 1)[-1]].append(f["code"])
    return {name: sorted(codes) for name, codes in out.items()}


@pytest.fixture(scope="module")
def corpus_runs(s3: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A healthy recorded run, a faulty one and a Hugging Face Trainer folder, locally and in
    ``s3://runs/check/``; the HF folder also holds a model file and a pickle no loader reads."""
    local = tmp_path_factory.mktemp("local") / "check"
    for name in (HEALTHY, FAULTY, HF):
        shutil.copytree(CORPUS / name, local / name)
    (local / HF / "model.safetensors").write_bytes(b"\0" * 4096)
    (local / HF / "training_args.bin").write_bytes(b"\x80\x04not to be unpickled")
    upload(local, "check")
    return local


def test_check_on_s3_finds_what_the_local_check_finds_and_names_runs_by_url(
    corpus_runs: Path,
) -> None:
    local_code, local = check_json(str(corpus_runs))
    code, remote = check_json(f"s3://{BUCKET}/check")
    assert code == local_code == 1
    assert codes_by_run(remote) == codes_by_run(local)
    assert "RL101" in codes_by_run(remote)[FAULTY]
    assert codes_by_run(remote)[HEALTHY] == []
    assert sorted(r["path"] for r in remote["runs"]) == sorted(
        f"s3://{BUCKET}/check/{name}" for name in (HEALTHY, FAULTY, HF)
    )
    assert {f["run"] for f in remote["findings"]} <= {r["path"] for r in remote["runs"]}
    assert [r["status"] for r in remote["runs"]] == [r["status"] for r in local["runs"]]
    # the whole report is the same, but for the runs' names
    renamed = json.loads(json.dumps(local).replace(str(corpus_runs), f"s3://{BUCKET}/check"))
    assert remote == renamed


def test_one_run_url_and_text_output_and_parallel_jobs(corpus_runs: Path) -> None:
    url = f"s3://{BUCKET}/check/{FAULTY}"
    code, one = check_json(url)
    assert code == 1 and [r["path"] for r in one["runs"]] == [url]
    text = invoke("check", url)
    assert text.exit_code == 1 and f"{url}" in text.stdout and "RL101" in text.stdout
    assert "/tmp" not in text.stdout and "runlint-remote-" not in text.output
    _, serial = check_json(f"s3://{BUCKET}/check")
    code, parallel = check_json(f"s3://{BUCKET}/check", extra=("--jobs", "2"))
    assert code == 1 and codes_by_run(parallel) == codes_by_run(serial)


@pytest.mark.parametrize("fmt", ["github", "sarif", "junit"])
def test_every_report_format_names_the_run_by_its_url(corpus_runs: Path, fmt: str) -> None:
    url = f"s3://{BUCKET}/check/{FAULTY}"
    result = invoke("check", url, "--format", fmt)
    assert result.exit_code == 1, result.output
    shown = url.replace(":", "%3A") if fmt == "github" else url  # a property's escaping
    assert shown in result.stdout and "runlint-remote-" not in result.output


def test_only_the_files_the_loaders_read_are_listed_for_fetching(corpus_runs: Path) -> None:
    from runlint.run.remote import find_remote

    runs = {r.name: r for r in find_remote(f"s3://{BUCKET}/check")}
    assert {n: r.kind for n, r in runs.items()} == {HEALTHY: "runlint", FAULTY: "runlint", HF: "hf"}
    assert [f for f, _ in runs[HF].files] == ["config.json", "trainer_state.json"]
    recorded = sorted(p.name for p in (corpus_runs / HEALTHY).iterdir())
    assert [f for f, _ in runs[HEALTHY].files] == recorded
    assert runs[HEALTHY].size == sum(p.stat().st_size for p in (corpus_runs / HEALTHY).iterdir())


def test_tensorboard_and_lightning_runs_in_s3_are_imported_like_local_ones(
    s3: dict[str, str], tmp_path: Path
) -> None:
    pytest.importorskip("torch")
    from torch.utils.tensorboard import SummaryWriter

    tb = tmp_path / "logs" / "tb-run"
    writer = SummaryWriter(str(tb))
    for step in range(60):
        writer.add_scalar("train/loss", 2.3 / (1 + 0.05 * step), step)
        writer.add_scalars("loss", {"train": 2.0 / (1 + step), "val": 2.5 / (1 + step)}, step)
    writer.close()
    (tb / "notes").mkdir()
    (tb / "notes" / "readme.txt").write_text("not an event file")
    shutil.copytree(ROOT / "fixtures/real/lightning/pl-001", tmp_path / "logs" / "pl-run")
    upload(tmp_path / "logs", "imported")
    local_code, local = check_json(str(tmp_path / "logs"), extra=("--select", "ALL"))
    code, remote = check_json(f"s3://{BUCKET}/imported", extra=("--select", "ALL"))
    assert code == local_code
    assert codes_by_run(remote) == codes_by_run(local)
    assert [r["status"] for r in remote["runs"]] == [r["status"] for r in local["runs"]]
    verbose = invoke("check", f"s3://{BUCKET}/imported", "-v", "--format", "json")
    local_v = invoke("check", str(tmp_path / "logs"), "-v", "--format", "json")
    ran = [r.get("ran") for r in json.loads(verbose.stdout)["runs"]]
    assert ran == [r.get("ran") for r in json.loads(local_v.stdout)["runs"]]


def test_sweep_over_a_folder_of_runs_in_s3_lints_like_the_local_folder(
    s3: dict[str, str], tmp_path: Path
) -> None:
    local = tmp_path / "search"
    for name in SWEEP_RUNS:
        shutil.copytree(CORPUS / name, local / name)
    upload(local, "search")
    here = invoke("sweep", str(local), "--trials", "--format", "json")
    there = invoke("sweep", f"s3://{BUCKET}/search", "--trials", "--format", "json")
    assert there.exit_code == here.exit_code, there.output
    a, b = json.loads(here.stdout), json.loads(there.stdout)
    assert codes_by_run(b) == codes_by_run(a) and len(b["runs"]) == 1 + len(SWEEP_RUNS)
    assert b["search"]["location"] == f"s3://{BUCKET}/search"
    assert sorted(t["id"] for t in b["search"]["trials"]) == sorted(SWEEP_RUNS)
    assert all(t["run"].startswith(f"s3://{BUCKET}/search/") for t in b["search"]["trials"])
    # the whole report is the same, but for the names
    assert b == json.loads(json.dumps(a).replace(str(local), f"s3://{BUCKET}/search"))


def test_a_missing_bucket_or_prefix_is_one_line_and_exit_2(s3: dict[str, str]) -> None:
    for url in (f"s3://no-such-bucket-{id(s3)}/x", f"s3://{BUCKET}/no/such/prefix"):
        result = invoke("check", url)
        assert result.exit_code == 2, result.output
        assert url in result.output and "Traceback" not in result.output
        errors = [line for line in result.output.splitlines() if url in line]
        assert errors and all(len(line) < 300 for line in errors)
    sweep = invoke("sweep", f"s3://{BUCKET}/no/such/prefix")
    assert sweep.exit_code == 2 and "Traceback" not in sweep.output


def test_an_unreachable_endpoint_is_one_line_and_exit_2(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_MAX_ATTEMPTS": "1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "runlint", "check", "s3://runs/x"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "s3://runs/x: cannot list" in proc.stdout + proc.stderr


def test_an_oversized_file_is_refused_before_it_is_fetched(
    corpus_runs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runlint.run import remote

    monkeypatch.setattr(remote, "MAX_FILE_BYTES", 1000)
    code, doc = check_json(f"s3://{BUCKET}/check/{HEALTHY}")
    assert code == 2
    (run,) = doc["runs"]
    assert run["status"] == "error" and "over the limit of" in run["error"]


def test_a_key_that_climbs_out_of_its_folder_is_never_written_outside_the_copy(
    s3: dict[str, str], tmp_path: Path
) -> None:
    client = boto3.client("s3")
    shutil.copytree(CORPUS / HEALTHY, tmp_path / "run")
    upload(tmp_path / "run", "climb/run")
    client.put_object(Bucket=BUCKET, Key="climb/run/../../escaped.json", Body=b"{}")
    client.put_object(Bucket=BUCKET, Key="climb/run/parts/../meta.json", Body=b"[]")
    code, doc = check_json(f"s3://{BUCKET}/climb")
    assert code == 0, doc
    assert [r["path"] for r in doc["runs"]] == [f"s3://{BUCKET}/climb/run"]


def test_without_fsspec_a_url_says_which_extra_to_install() -> None:
    code = (
        "import sys; sys.modules['fsspec'] = None; sys.modules['fsspec.core'] = None\n"
        "from runlint import cli; sys.exit(cli.invoke(['check', 's3://bucket/runs']))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert proc.returncode == 2
    assert "pip install 'runlint[s3]'" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_local_check_never_imports_fsspec() -> None:
    code = (
        "import sys; from runlint import cli\n"
        f"cli.invoke(['check', {str(CORPUS / HEALTHY)!r}])\n"
        "print('fsspec' in sys.modules, 's3fs' in sys.modules)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert proc.stdout.strip().splitlines()[-1] == "False False", proc.stderr


def test_any_fsspec_url_works_a_file_url_too(corpus_runs: Path) -> None:
    local_code, local = check_json(str(corpus_runs))
    code, doc = check_json(f"file://{corpus_runs}")
    assert code == local_code and codes_by_run(doc) == codes_by_run(local)
    assert all(r["path"].startswith(f"file://{corpus_runs}/") for r in doc["runs"])
