"""Distributed training under torchrun on the CPU (gloo, 2 processes) against one process, on a FER2013 slice.

Equivalence needs a model whose update does not depend on how a batch is split: ``baseline_cnn``
has no BatchNorm (BatchNorm normalises each process's share by that share's statistics;
SyncBatchNorm, GPU-only in PyTorch, would be needed), dropout is set to 0 and augmentation is off
(random draws differ per process). Then 2 processes with 16 samples each and averaged gradients
make the very update 1 process makes with 32, up to floating-point summation order.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from affectlens.config_io import load_config
from affectlens.data.sampling import ShardedBatches
from affectlens.errors import AffectlensError
from affectlens.training import runs
from affectlens.training.config import TrainConfig

REPO = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).with_name("ddp_worker.py")


def settings(data_dir: Path, **extra: object) -> dict[str, object]:
    """A one-epoch run: 192 balanced-sampled training faces in global batches of 32 (6 steps)."""
    return {
        "data.path": str(data_dir / "fer2013"), "data.max_per_split": 192, "data.test_split": "null",
        "ten_crop": "false", "model.name": "baseline_cnn", "model.options": '{"dropout": 0}',
        "augment.enabled": "false", "augment.crop_size": 0, "epochs": 1, "batch_size": 32,
        "checkpoint_every_steps": 2, "optim.lr": 0.05, "scheduler.name": "cosine", "sampler": "balanced",
        "threads": 1, **extra,
    }


def items(values: dict[str, object]) -> list[str]:
    return [f"{k}={v}" for k, v in values.items()]


def torchrun(args: list[str], extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``torchrun --standalone --nproc-per-node 2 ARGS`` with this checkout on the path, one thread each."""
    launcher = Path(sys.executable).with_name("torchrun")
    command = [str(launcher)] if launcher.exists() else [sys.executable, "-m", "torch.distributed.run"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
           "OMP_NUM_THREADS": "1", **(extra_env or {})}
    return subprocess.run([*command, "--standalone", "--nproc-per-node", "2", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=900)


def assert_same_weights(a_file: Path, b_file: Path) -> None:
    a, b = load_file(str(a_file)), load_file(str(b_file))
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=2e-6, msg=key)


@pytest.fixture(scope="module")
def single(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference: one process, global batch 32."""
    out = tmp_path_factory.mktemp("single")
    runs.train(load_config(TrainConfig, None, items(settings(data_dir, output_dir=out, run_name="run"))))
    return out / "run"


def test_two_processes_train_the_same_weights_as_one_and_only_rank_0_writes(
        data_dir: Path, single: Path, tmp_path: Path) -> None:
    runs, audit = tmp_path / "runs", tmp_path / "audit"
    audit.mkdir()
    done = torchrun([str(WORKER), "train", *(f"--set={item}" for item in items(settings(data_dir))),
                     "-o", str(runs), "--run-name", "ddp"],
                    {"AFFECTLENS_AUDIT_DIR": str(audit), "AFFECTLENS_AUDIT_ROOT": str(runs)})
    assert done.returncode == 0, done.stderr[-3000:]
    run = runs / "ddp"
    assert_same_weights(single / "last.safetensors", run / "last.safetensors")
    ours, theirs = (json.loads((r / "metrics.json").read_text())[0] for r in (run, single))
    assert ours["val_accuracy"] == theirs["val_accuracy"]  # validation sharded over both, gathered
    for key in ("train_loss", "train_accuracy", "val_loss", "val_macro_f1"):
        assert ours[key] == pytest.approx(theirs[key], rel=1e-4, abs=1e-6), key
    assert json.loads((run / "summary.json").read_text())["processes"] == 2
    assert done.stdout.count('"run_dir"') == 1  # the summary printed once, by rank 0

    rank0, rank1 = (json.loads((audit / f"rank{r}.json").read_text()) for r in (0, 1))
    assert rank1 == []
    written = {Path(line.split(" ", 1)[1]).name for line in rank0}
    assert {"ddp", "config.yaml", "checkpoint.pt.tmp", "metrics.json", "best.json", "last.json"} <= written


def test_the_global_batch_decides_not_the_per_process_one(data_dir: Path, single: Path, tmp_path: Path) -> None:
    """The equality above is not trivial: one process with 16 per step (the per-process share) differs."""
    runs.train(load_config(TrainConfig, None, items(settings(data_dir, batch_size=16, output_dir=tmp_path,
                                                                run_name="b16"))))
    a, b = load_file(str(single / "last.safetensors")), load_file(str(tmp_path / "b16" / "last.safetensors"))
    assert any(not torch.allclose(a[k], b[k], rtol=1e-3, atol=1e-4) for k in a)


def test_a_killed_distributed_run_resumes_to_the_same_weights(data_dir: Path, single: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    killed = torchrun([str(WORKER), "train", *(f"--set={item}" for item in items(settings(data_dir))),
                       "-o", str(runs), "--run-name", "ddp"], {"AFFECTLENS_KILL_AT": "0:4"})
    assert killed.returncode != 0
    run = runs / "ddp"
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    assert (state["epoch"], state["step_in_epoch"]) == (0, 4) and len(state["process_rng"]) == 2
    assert not (run / "last.safetensors").exists()

    resumed = torchrun(["-m", "affectlens", "train", "--resume", str(run)])  # the documented command
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_same_weights(single / "last.safetensors", run / "last.safetensors")
    assert json.loads((run / "metrics.json").read_text())[0]["val_accuracy"] == \
        json.loads((single / "metrics.json").read_text())[0]["val_accuracy"]


def test_batch_size_must_divide_into_the_processes(data_dir: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Checked from torchrun's variables before the process group starts: no process waits for a doomed one."""
    for name, value in {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "2"}.items():
        monkeypatch.setenv(name, value)
    cfg = load_config(TrainConfig, None, items(settings(data_dir, batch_size=33, output_dir=tmp_path, run_name="odd")))
    with pytest.raises(AffectlensError, match=r"batch_size 33 \(the global batch\) does not divide into 2 processes"):
        runs.train(cfg)
    assert not (tmp_path / "odd").exists()


# ----------------------------------------------------------------------------- sharding, no processes
def test_shards_of_every_global_batch_make_the_single_process_stream() -> None:
    class Windows:
        """An index-list sampler (video windows) with set_epoch, as a sequence sampler has."""

        def __init__(self) -> None:
            self.epoch = 0

        def set_epoch(self, epoch: int) -> None:
            self.epoch = epoch

        def __len__(self) -> int:
            return 10

        def __iter__(self):
            return iter([[self.epoch, i, i + 1] for i in range(10)])

    source = Windows()
    one = ShardedBatches(source, 4, 0, 1)
    one.set_epoch(3)
    whole = list(one)
    assert [len(b) for b in whole] == [4, 4, 2] and whole[0][0] == [3, 0, 1]
    shares = [list(ShardedBatches(source, 4, rank, 2)) for rank in range(2)]
    assert all(len(s) == len(ShardedBatches(source, 4, 1, 2)) == 3 for s in shares)
    for step in range(2):  # full batches: the two halves, in rank order, are the batch
        assert shares[0][step] + shares[1][step] == whole[step]
    assert shares[0][2] + shares[1][2] == whole[2]  # 2 left: one each, no padding needed

    order = np.arange(11)
    stream = type("Order", (), {"order": order, "__len__": lambda self: 11, "__iter__": lambda self: iter(order)})()
    last = [list(ShardedBatches(stream, 4, r, 4))[-1] for r in range(4)]  # 3 left for 4 processes
    assert last == [[8], [9], [10], [0]]  # padded with the epoch's first sample: every process steps
    assert list(ShardedBatches(stream, 4, 1, 2, start_batch=2)) == [[10, 0]]
    with pytest.raises(AffectlensError, match="batch_size 6 .* does not divide into 4 processes"):
        ShardedBatches(stream, 6, 0, 4)

