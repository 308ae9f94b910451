"""The GPU campaign driver (tools/gpu_campaign.py) on a CPU budget, with real FER2013 rows.

The end-to-end test cuts a two-step campaign (a training run, then a ten-crop evaluation of it) with a
budget too small for it, then finishes it with a second ``run``: the step must go on from its
checkpoint (the epochs recorded before the cut stay exactly as they were, the resumed invocation
starts where the cut one ended), and status, collect, pack/unpack and summary must report what the
run folders hold.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from affectlens.config_io import load_config
from affectlens.errors import AffectlensError
from affectlens.training.config import TrainConfig

if TYPE_CHECKING:
    from conftest import FakeClock

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tools" / "gpu_campaign.py"
_spec = importlib.util.spec_from_file_location("gpu_campaign", SCRIPT)
assert _spec is not None and _spec.loader is not None
gc = importlib.util.module_from_spec(_spec)
sys.modules["gpu_campaign"] = gc  # dataclasses look their module up while the script loads
_spec.loader.exec_module(gc)

EPOCHS = 60  # enough that no machine finishes training inside the first, 8-second budget (about 0.3 s an epoch here)
TINY_CAMPAIGN = f"""
defaults:
  set: [data.max_per_split=150, model.name=baseline_cnn, epochs={EPOCHS}, batch_size=16,
        checkpoint_every_steps=1, threads=1, ten_crop=false]
steps:
  - {{name: seed, kind: train, group: seed, config: configs/fer2013_vgg_paper.yaml, dataset: fer2013,
     what: "paper recipe, tiny"}}
  - {{name: seed_tencrop, kind: evaluate, group: seed, source: seed, split: PrivateTest, ten_crop: true,
     what: "seed on PrivateTest, ten-crop"}}
"""


@pytest.fixture(scope="module")
def fer_slice(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    """A data folder holding the first 200 real FER2013 faces of each split (evaluations stay quick)."""
    source = np.load(next((data_dir / "fer2013").glob("*.npz")))
    usage = source["usage"].astype(str)
    rows = np.concatenate([np.flatnonzero(usage == split)[:200] for split in ("Training", "PublicTest", "PrivateTest")])
    folder = tmp_path_factory.mktemp("data")
    (folder / "fer2013").mkdir()
    np.savez(folder / "fer2013" / "fer2013_slice.npz", images=source["images"][rows], labels=source["labels"][rows],
             usage=usage[rows], class_names=source["class_names"])
    return folder


def driver(*args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                            timeout=timeout, env=env)
    return result


def read_json(path: Path):
    return json.loads(path.read_text())


@pytest.mark.slow
def test_campaign_is_cut_by_its_budget_and_resumed_from_the_checkpoint(tmp_path: Path, fer_slice: Path) -> None:
    campaign = tmp_path / "campaign.yaml"
    campaign.write_text(TINY_CAMPAIGN)
    cdir = tmp_path / "campaign"
    seed_dir = cdir / "runs" / "seed"
    common = ["--campaign", campaign, "--campaign-dir", cdir, "--data-dir", fer_slice, "--grace-seconds", "1.5",
              "--min-slice-seconds", "1", "--wheels-dir", tmp_path / "no_wheels", "--site-dir", tmp_path / "site"]

    # first runs: budgets too small for the campaign; grow until the cut falls after a finished epoch
    # (a slow machine may need a second try; a step cut before its first checkpoint starts again)
    # (that the driver keeps to its budget is checked on a fake clock below, not on this machine's speed)
    budget = 8.0
    for _ in range(4):
        first = driver("run", "--budget-seconds", budget, *common)
        state = read_json(cdir / "campaign_state.json")
        assert state["steps"]["seed"]["status"] != "done", "the budget was large enough for the whole step"
        assert first.returncode == 0, first.stdout + first.stderr
        assert re.search(rf"run took \d+s of a {budget:.0f}s budget", first.stdout), first.stdout
        if (seed_dir / "metrics.json").exists():
            break
        budget += 5
    else:
        pytest.fail(f"no budget up to {budget}s let the seed finish an epoch:\n{first.stdout}")
    assert state["steps"]["seed"]["status"] == "running"
    assert "seed_tencrop" not in state["steps"] or state["steps"]["seed_tencrop"]["status"] == "pending"
    cut = state["steps"]["seed"]["invocations"][-1]
    assert cut["outcome"] == "interrupted" and cut["end_position"] is not None
    rows_before = read_json(seed_dir / "metrics.json")
    assert 1 <= len(rows_before) < EPOCHS

    second = driver("run", "--budget-seconds", 240, *common)
    assert second.returncode == 0, second.stdout + second.stderr
    state = read_json(cdir / "campaign_state.json")
    assert [state["steps"][s]["status"] for s in ("seed", "seed_tencrop")] == ["done", "done"]
    invocations = state["steps"]["seed"]["invocations"]
    resumed = invocations[invocations.index(cut) + 1]
    assert resumed["mode"] == "resume" and resumed["start_position"] == cut["end_position"]
    assert resumed["command"] == f"affectlens train --resume {seed_dir}"
    assert resumed["outcome"] == "finished" and resumed is invocations[-1]
    # not restarted from scratch: the epochs done before the cut are kept as they were (their timings too)
    rows = read_json(seed_dir / "metrics.json")
    assert [r["epoch"] for r in rows] == list(range(1, EPOCHS + 1))
    assert rows[: len(rows_before)] == rows_before
    summary = read_json(seed_dir / "summary.json")
    assert summary["epochs"] == EPOCHS
    evaluation = read_json(cdir / "runs" / "seed_tencrop" / "metrics.json")
    assert read_json(cdir / "runs" / "seed_tencrop" / "evaluation.json")["ten_crop"] is True

    # status: one row per step with the run folders' numbers
    status = driver("status", "--campaign", campaign, "--campaign-dir", cdir)
    assert status.returncode == 0, status.stderr
    best_val = max(r["val_accuracy"] for r in rows)
    seed_row = next(line for line in status.stdout.splitlines() if line.startswith("| seed |"))
    cells = [c.strip() for c in seed_row.strip("|").split("|")]
    assert cells[:7] == ["seed", "train", "done", f"{EPOCHS}/{EPOCHS}", f"{100 * best_val:.2f}",
                         f"{100 * summary['test_accuracy']:.2f}", "—"]
    eval_row = next(line for line in status.stdout.splitlines() if line.startswith("| seed_tencrop |"))
    assert f"{100 * evaluation['accuracy']:.2f}" in eval_row

    # collect: a plain copy with weights, metrics, curves and reports, without the checkpoint
    out = tmp_path / "collected"
    assert driver("collect", "--campaign-dir", cdir, "--out", out).returncode == 0
    for name in ("best.safetensors", "best.json", "metrics.json", "curves.png", "summary.json", "config.yaml",
                 "eval_PrivateTest/report.md", "eval_PrivateTest/confusion_matrix.png"):
        assert (out / "runs" / "seed" / name).is_file(), name
    assert (out / "runs" / "seed_tencrop" / "report.md").is_file()
    assert (out / "campaign_state.json").is_file() and (out / "logs" / "seed.log").is_file()
    assert not (out / "runs" / "seed" / "checkpoint.pt").exists()

    # pack: what the device tool's $OUT brings back (at most 8 files of 16 MiB, plain names), restored whole
    packed = tmp_path / "out"
    result = driver("collect", "--pack", "--campaign-dir", cdir, "--out", packed)
    assert result.returncode == 0, result.stderr
    files = list(packed.iterdir())
    assert len(files) <= 8 and all(f.stat().st_size <= 16 * 2**20 and re.fullmatch(r"[\w.-]+", f.name) for f in files)
    restored = tmp_path / "restored"
    assert driver("unpack", "--from", packed, "--campaign-dir", restored).returncode == 0
    weights = "runs/seed/best.safetensors"
    assert (restored / weights).read_bytes() == (cdir / weights).read_bytes()
    assert not (restored / "runs" / "seed" / "checkpoint.pt").exists()  # a finished step's checkpoint stays behind
    again = driver("status", "--campaign", campaign, "--campaign-dir", restored)
    assert again.stdout == status.stdout
    # a fresh machine that so far only received data continues from the carried pack, and has nothing left to do
    fresh = tmp_path / "fresh"
    gc.CampaignState(fresh).save()
    nothing = driver("collect", "--pack", "--campaign-dir", fresh, "--out", tmp_path / "no_pack")
    assert nothing.returncode == 0 and not (tmp_path / "no_pack").exists()  # it would replace a useful pack
    assert common[2:4] == ["--campaign-dir", cdir]
    cont = driver("run", "--budget-seconds", 60, *common[:3], fresh, *common[4:], "--restore-from", packed)
    assert cont.returncode == 0 and "restoring it from" in cont.stdout and "new:" not in cont.stdout, cont.stdout
    assert driver("status", "--campaign", campaign, "--campaign-dir", fresh).stdout == status.stdout

    # a pack too small for the weights keeps the results and says what it left out
    small = tmp_path / "small"
    assert driver("collect", "--pack", "--max-mib", "1", "--campaign-dir", cdir, "--out", small).returncode == 0
    left = {item["path"] for item in read_json(small / "campaign-pack.json")["left_out"]}
    assert "runs/seed/best.safetensors" in left and "runs/seed/metrics.json" not in left

    # summary: the Markdown table holds the run folders' numbers and the commands that made them
    md = tmp_path / "gpu_campaign.md"
    result = driver("summary", "--campaign", campaign, "--campaign-dir", restored, "--out", md)
    assert result.returncode == 0, result.stderr
    text = md.read_text()
    seed_line = next(line for line in text.splitlines() if line.startswith("| seed |"))
    assert f"| {100 * best_val:.2f} | {100 * summary['test_accuracy']:.2f} | " in seed_line
    assert f"{summary['test_macro_f1']:.3f}" in seed_line
    assert f"| {100 * evaluation['accuracy']:.2f} |" in next(line for line in text.splitlines()
                                                          if line.startswith("| seed_tencrop |"))
    resumes = sum(i["mode"] == "resume" for i in invocations)
    assert "- seed: `affectlens train -c configs/fer2013_vgg_paper.yaml" in text and f"(+{resumes} resumes)" in text


# ---------------------------------------------------------------------------- the budget, on a fake clock
TWO_STEPS = """
steps:
  - {name: a, kind: train, config: configs/fer2013_vgg_paper.yaml}
  - {name: b, kind: train, config: configs/fer2013_vgg_paper.yaml}
"""
BUDGET, GRACE, MIN_SLICE = 300.0, 100.0, 50.0


def run_on_a_fake_clock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clock: FakeClock, *extra: str) -> int:
    """``gpu_campaign.py run`` in this process, its budget measured on ``clock``: two train steps, a
    300 s budget, 100 s grace and a 50 s minimum slice (the steps' data is an empty stand-in)."""
    monkeypatch.setattr(gc, "clock", clock)
    monkeypatch.setattr(gc.StopFlag, "install", lambda: None)  # pytest keeps its own signal handlers
    monkeypatch.setattr(gc.StopFlag, "requested", False)
    monkeypatch.setattr(gc, "machine_name", lambda: "test machine")
    campaign = tmp_path / "campaign.yaml"
    campaign.write_text(TWO_STEPS)
    (tmp_path / "data" / "fer2013").mkdir(parents=True)
    (tmp_path / "data" / "fer2013" / "stand_in.npz").write_bytes(b"")
    args = gc.parse_args(["run", "--budget-seconds", str(BUDGET), "--grace-seconds", str(GRACE),
                          "--min-slice-seconds", str(MIN_SLICE), "--campaign", str(campaign),
                          "--campaign-dir", str(tmp_path / "c"), "--data-dir", str(tmp_path / "data"),
                          "--wheels-dir", str(tmp_path / "no_wheels"), "--site-dir", str(tmp_path / "site"), *extra])
    return gc.cmd_run(args)


def test_a_step_is_stopped_when_the_budget_less_its_grace_is_spent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  fake_clock: FakeClock,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """A real child that would run for minutes is stopped at the first check once the clock reaches
    the budget less the grace, never before, and the run reports a time within its budget."""
    start = fake_clock.now
    fake_clock.tick = 25.0  # each reading of the clock (about one check of the child) moves it on 25 s
    monkeypatch.setattr(gc, "affectlens_command", lambda: [sys.executable, "-c", "import time; time.sleep(300)"])
    stopped_at = []
    real_stop_child = gc.stop_child

    def stop_child(proc: subprocess.Popen, grace: float) -> int:
        stopped_at.append(fake_clock.last)
        return real_stop_child(proc, grace)

    monkeypatch.setattr(gc, "stop_child", stop_child)
    assert run_on_a_fake_clock(tmp_path, monkeypatch, fake_clock, "--only", "a") == 0
    out = capsys.readouterr().out
    assert stopped_at == [start + BUDGET - GRACE]  # the first reading at or past it: not before, not later
    record = read_json(tmp_path / "c" / "campaign_state.json")["steps"]["a"]
    (invocation,) = record["invocations"]
    assert invocation["outcome"] == "interrupted" and invocation["rc"] != 0, invocation
    assert record["status"] == "running" and record["message"] == "stopped by the budget; the next run resumes it"
    took = float(re.search(r"run took (\d+)s of a 300s budget", out).group(1))
    assert took <= BUDGET, out


@pytest.mark.parametrize(("spent", "second_starts"), [(140.0, True), (160.0, False)])
def test_no_step_starts_with_less_than_the_minimum_slice_left(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              fake_clock: FakeClock,
                                                              capsys: pytest.CaptureFixture[str], spent: float,
                                                              second_starts: bool) -> None:
    """After a first step that took ``spent`` seconds of the 200 s before the grace, the second starts
    only when at least the 50 s minimum slice is left; every step is told to stop at the same time."""
    start = fake_clock.now
    calls = []

    def run_child(command: list[str], log_path: Path, stop_at: float, grace: float,
                  env: dict[str, str]) -> tuple[int, bool]:
        name = next(arg.split("=", 1)[1] for arg in command if arg.startswith("run_name="))
        calls.append((name, stop_at, grace))
        fake_clock.advance(spent)
        (tmp_path / "c" / "runs" / name).mkdir(parents=True)
        (tmp_path / "c" / "runs" / name / "summary.json").write_text('{"test_accuracy": 0.5}')
        return 0, False

    monkeypatch.setattr(gc, "run_child", run_child)
    assert run_on_a_fake_clock(tmp_path, monkeypatch, fake_clock) == 0
    out = capsys.readouterr().out
    stop_at = start + BUDGET - GRACE
    assert calls == [("a", stop_at, GRACE)] + ([("b", stop_at, GRACE)] if second_starts else [])
    state = read_json(tmp_path / "c" / "campaign_state.json")
    assert state["steps"]["a"]["status"] == "done"
    if second_starts:
        assert state["steps"]["b"]["status"] == "done" and "stopping:" not in out
    else:
        assert not state["steps"].get("b", {}).get("invocations"), state
        assert f"stopping: {BUDGET - spent:.0f}s of the budget left, under --grace-seconds + --min-slice-seconds" in out
    assert f"run took {spent * len(calls):.0f}s of a 300s budget" in out


def test_staged_parts_join_only_when_all_have_come(tmp_path: Path, data_dir: Path) -> None:
    staged = tmp_path / ".gpu_data"
    result = driver("stage", "--source", data_dir, "--datasets", "fer2013", "--out", staged, "--part-mib", "30")
    assert result.returncode == 0, result.stderr
    parts = sorted(staged.glob("fer2013.part*of3"))
    assert len(parts) == 3 and "device call 3" in result.stdout
    held_back = tmp_path / "later"
    held_back.mkdir()
    for part in parts[1:]:  # the first call brought part 1 only
        part.rename(held_back / part.name)
    assert "1 of 3 parts here" in gc.assemble_staged(staged)[0]
    assert not gc.dataset_ready(staged, "fer2013")
    for part in held_back.iterdir():
        part.rename(staged / part.name)
    assert "joined 3 part(s)" in gc.assemble_staged(staged)[0]
    original = next((data_dir / "fer2013").glob("*.npz"))
    joined = staged / "fer2013" / original.name
    assert gc.sha256_of([joined]) == gc.sha256_of([original])
    assert gc.dataset_ready(staged, "fer2013") and not list(staged.glob("fer2013.part*"))


def test_shipped_campaign_steps_are_valid_train_configs() -> None:
    campaign = gc.load_campaign(gc.DEFAULT_CAMPAIGN)
    layout = gc.Layout(ROOT / ".gpu_campaign")
    for step in campaign.steps:
        if step.kind != "train" or step.requires:  # distill.* keys arrive with the distillation option
            continue
        launch = gc.plan_launch(step, layout, ROOT / ".gpu_data", [], "cuda", campaign)
        sets = [launch.args[i + 1] for i, arg in enumerate(launch.args) if arg == "--set"]
        cfg = load_config(TrainConfig, ROOT / str(step.config), sets)
        assert (cfg.run_name, cfg.output_dir, cfg.device) == (step.name, ".gpu_campaign/runs", "cuda")
        assert cfg.data.path == f".gpu_data/{step.dataset}"
    names = [s.name for s in campaign.steps]
    assert names[:4] == ["seed", "seed_finetune", "seed_finetune_private", "seed_finetune_private_tencrop"]


def test_launch_commands_for_finetune_resume_evaluate_and_teachers(tmp_path: Path) -> None:
    campaign = gc.load_campaign(gc.DEFAULT_CAMPAIGN)
    layout = gc.Layout(tmp_path / "c")
    data = tmp_path / "data"
    runs = tmp_path / "c" / "runs"
    finetune = gc.plan_launch(campaign.step("seed_finetune"), layout, data, [], "auto", campaign)
    assert finetune.mode == "new"
    assert finetune.args == ["finetune", str(runs / "seed"), "--epochs", "50", "--lr", "0.0001", "--run-name",
                             "seed_finetune", "--set", f"data.path={data / 'fer2013'}"]
    evaluate = gc.plan_launch(campaign.step("seed_finetune_private_tencrop"), layout, data, [], "auto", campaign)
    assert evaluate.args == ["evaluate", "--model", str(runs / "seed_finetune"), "--data", str(data / "fer2013"),
                             "--split", "PrivateTest", "--ten-crop", "-o", str(runs / "seed_finetune_private_tencrop")]
    distill = campaign.step("distill_fast")
    assert distill.dependencies == ["seed"]
    teacher = gc.plan_launch(distill, layout, data, ["epochs=3"], "auto", campaign)
    assert f"distill.teacher=[{runs / 'seed'}]" in teacher.args
    sets = [teacher.args[i + 1] for i, arg in enumerate(teacher.args) if arg == "--set"]
    assert sets.index("epochs=3") < sets.index(f"run_name={distill.name}")  # the driver's settings come last
    (runs / "seed_finetune").mkdir(parents=True)
    (runs / "seed_finetune" / "checkpoint.pt").write_bytes(b"")
    resume = gc.plan_launch(campaign.step("seed_finetune"), layout, data, [], "auto", campaign)
    assert (resume.mode, resume.args) == ("resume", ["train", "--resume", str(runs / "seed_finetune")])


def test_steps_wait_for_dependencies_data_weights_and_training_options(tmp_path: Path, data_dir: Path) -> None:
    campaign = gc.load_campaign(gc.DEFAULT_CAMPAIGN)
    layout = gc.Layout(tmp_path / "c")
    state = gc.CampaignState(layout.campaign_dir)
    distill = campaign.step("distill_default")
    assert gc.why_waiting(distill, state, layout, data_dir, {"data"}) == "after seed"
    state.step("seed")["status"] = "done"
    assert "best.safetensors is not here" in gc.why_waiting(distill, state, layout, data_dir, {"data"})
    layout.run_dir("seed").mkdir(parents=True)
    (layout.run_dir("seed") / "best.safetensors").write_bytes(b"")
    assert "needs training option(s) distill" in gc.why_waiting(distill, state, layout, data_dir, {"data"})
    assert gc.why_waiting(distill, state, layout, data_dir, {"data", "distill"}) == ""
    assert "no ferplus data" in gc.why_waiting(campaign.step("ferplus_vgg_soft"), state, layout, tmp_path, set())


def test_campaign_mistakes_are_one_line_errors(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("steps:\n  - {name: a, kind: train, config: configs/fer2013_vgg_paper.yaml, epoch: 3}\n")
    with pytest.raises(AffectlensError, match="step 'a': unknown key.*epoch"):
        gc.load_campaign(path)
    path.write_text("steps:\n  - {name: a, kind: evaluate, source: b}\n  - {name: b, kind: train, "
                    "config: configs/fer2013_vgg_paper.yaml}\n")
    with pytest.raises(AffectlensError, match="depends on 'b', which is not an earlier step"):
        gc.load_campaign(path)
    result = driver("run", "--budget-seconds", 5, "--campaign", path, "--campaign-dir", tmp_path / "c")
    assert result.returncode == 2 and result.stderr.startswith("gpu_campaign: error: ")
