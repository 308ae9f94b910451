"""Issue 9's GPU campaign: one resumable driver for every step of configs/gpu/campaign.yaml.

Why it is built this way: the GPU is reached through the device tool, which lends a bare machine,
runs one command for at most 10 minutes, sends only this checkout (64 MiB in all; ../shared stays
behind) and brings back at most 8 files (16 MiB each, 64 MiB in all) written under $OUT. So:

* each step is an ``affectlens`` subprocess (``train -c``, ``train --resume``, ``finetune``,
  ``evaluate``) interrupted with SIGINT, then SIGTERM, before ``--budget-seconds`` run out; training
  writes a checkpoint every ``checkpoint_every_steps`` steps and ``--resume`` continues it exactly;
* the progress lives in ``campaign_state.json`` in the campaign folder (written atomically), so the
  next ``run`` resumes the unfinished step from its checkpoint instead of starting it again;
* the data travel as parts (``stage``) that the machine joins and checks (sha256) when all are there,
  and the results come back as a few tar parts (``collect --pack``) that ``unpack`` restores here.

Subcommands::

    stage    split ../shared/data/{fer2013,ferplus} npz files into .gpu_data/<name>.partKofN/ folders
    run      do as much of the campaign as fits in --budget-seconds, resuming the unfinished step
    status   table of the steps: done / running / pending / failed, epochs, best val and test accuracy
    collect  copy every run folder to --out (no checkpoint.pt unless --with-checkpoints), or
             --pack it into at most 4 parts of 15 MiB plus a manifest, which is what $OUT can bring back
    unpack   restore a packed campaign folder (to read it here, or to carry it to a fresh machine)
    summary  Markdown tables of the finished runs (benchmarks/results/gpu_campaign.md), numbers read
             from the run folders, with the command of every run

A GPU session, step by step (the checkout here is /work/main; every path is relative to it):

1. Here, once: the device image has torch but not kornia, and the data are too big for one call::

       python -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \\
           --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \\
           -d .whl kornia==0.9.0 kornia_rs==0.2.0
       python tools/gpu_campaign.py stage --datasets fer2013

   ``stage`` sizes the parts so that each fits beside the checkout and .whl (with a 33 MiB checkout
   and 7 MiB of wheels, FER2013's 76 MiB travel in 4 parts) and prints the carry list of each call.

2. Device calls (the device tool's ``run``), back to back: a machine is given back 30 s after a call
   and what it held is lost. Every call has the same command and ``timeout_s: 600`` (no ``kind``: the
   first call gets nvidia-h100-x1); the command is one string whose backslash-newlines are bash line
   continuations, and the 540 s budget leaves time for ``collect`` inside the 600 s::

       python3 tools/gpu_campaign.py run --budget-seconds 540 --campaign-dir .gpu_campaign \\
           --device cuda --restore-from .gpu_back; \\
       python3 tools/gpu_campaign.py collect --pack --campaign-dir .gpu_campaign --out $OUT

   Only ``carry`` changes: call 1 ``[".whl", ".gpu_data/fer2013.part1of4"]``, call 2
   ``[".gpu_data/fer2013.part2of4"]``, call 3 ``[".gpu_data/fer2013.part3of4"]``, call 4
   ``[".gpu_data/fer2013.part4of4", ".gpu_back"]`` (.gpu_back only if a pack from an earlier machine is
   there), then ``[]`` for as long as the session has device time. ``run`` installs .whl into
   .gpu_site/, joins the parts into .gpu_data/fer2013/ once all have come (the first calls run no
   step), and keeps the campaign in .gpu_campaign/: ignored folders that a warm machine keeps
   between calls without their travelling again. The FER+ step needs ``stage --datasets ferplus``
   and its parts carried the same way.

3. Here, after each call that brought a pack back (files_at holds campaign-pack.json; calls that only
   carried data bring none), keep it in .gpu_back/ and read it::

       rm -rf .gpu_back && mkdir .gpu_back && cp <files_at>/campaign-pack.* .gpu_back/
       python tools/gpu_campaign.py unpack --from .gpu_back --campaign-dir .gpu_campaign
       python tools/gpu_campaign.py status --campaign-dir .gpu_campaign
       python tools/gpu_campaign.py summary --campaign-dir .gpu_campaign

4. A fresh machine (a reply with warm false, or a later session) continues from .gpu_back: carried in
   one call, ``--restore-from .gpu_back`` unpacks it while no step has run on that machine (a
   machine's own campaign is newer than any pack and is kept). A pack too big to travel beside the
   checkout is re-packed smaller here first, resume checkpoints before weights:
   ``python tools/gpu_campaign.py collect --pack --max-mib 20 --campaign-dir .gpu_campaign --out .gpu_back``.

Limits that no driver can lift: a full-width vgg_fer checkpoint (about 240 MB) and its weights
(120 MB) never fit through the tool, so a step on it must finish, and any step that reads its
weights (finetune, evaluation, a teacher) must run, while one machine is held (30 minutes at most);
packs list what they left out. Quick check of the whole path on any machine::

    python tools/gpu_campaign.py run --budget-seconds 300 --campaign-dir /tmp/smoke \\
        --data-dir ../shared/data --only seed --set epochs=1 --set data.max_per_split=300
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import io
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
if importlib.util.find_spec("affectlens") is None:  # on the device machine nothing is installed: use the checkout
    sys.path.insert(0, str(ROOT))

from affectlens.errors import AffectlensError  # noqa: E402
from affectlens.utils.markdown import markdown_table  # noqa: E402

DEFAULT_CAMPAIGN = ROOT / "configs" / "gpu" / "campaign.yaml"
DEFAULT_SUMMARY = ROOT / "benchmarks" / "results" / "gpu_campaign.md"
STATE_FILE = "campaign_state.json"
CHECKPOINT = "checkpoint.pt"
STEP_KINDS = ("train", "finetune", "evaluate")
STEP_KEYS = {"name", "kind", "group", "what", "config", "set", "dataset", "source", "epochs", "lr", "split",
             "ten_crop", "after", "requires"}
NAME = re.compile(r"^[A-Za-z0-9_-]+$")
RUNS_PLACEHOLDER = re.compile(r"\{runs\}/([A-Za-z0-9_-]+)")
MIB = 2**20
#: the clock the budget is measured on (tests put a fake one here)
clock: Callable[[], float] = time.monotonic
#: what the device tool lets travel in one call, and what it brings back from $OUT
DEVICE_TREE_MIB = 64
PACK_PART_MIB = 15
PACK_MAX_MIB = 60
PACK_MANIFEST = "campaign-pack.json"
PACK_PART = "campaign-pack.tar.{:03d}"
LOG_TAIL_BYTES = 256 * 1024


# ================================================================================ campaign definition
@dataclass
class Step:
    """One named unit of work; ``train`` steps read a config, the others read an earlier step's run."""

    name: str
    kind: str
    group: str = ""
    what: str = ""
    config: str | None = None
    overrides: list[str] = field(default_factory=list)
    dataset: str = ""
    source: str | None = None
    epochs: int | None = None
    lr: float | None = None
    split: str = "PrivateTest"
    ten_crop: bool = False
    after: list[str] = field(default_factory=list)
    requires: list[str] = field(default_factory=list)

    @property
    def weights_from(self) -> list[str]:
        """Steps whose best weights this one reads: the source, and runs named as ``{runs}/NAME`` (a teacher)."""
        named = [m for value in self.overrides for m in RUNS_PLACEHOLDER.findall(value)]
        return list(dict.fromkeys([*([self.source] if self.source else []), *named]))

    @property
    def dependencies(self) -> list[str]:
        """Steps that must be done first: ``after`` and those whose weights it reads."""
        return list(dict.fromkeys([*self.after, *self.weights_from]))


@dataclass
class Campaign:
    path: Path
    steps: list[Step]
    defaults: list[str] = field(default_factory=list)

    def step(self, name: str) -> Step:
        return next(s for s in self.steps if s.name == name)


def load_campaign(path: Path) -> Campaign:
    """Read and check a campaign YAML; mistakes are one-line errors naming the file and the step."""
    if not path.exists():
        raise AffectlensError(f"{path}: campaign file does not exist")
    data = yaml.safe_load(path.read_text()) or {}
    unknown = set(data) - {"defaults", "steps"}
    if unknown:
        raise AffectlensError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}; valid: defaults, steps")
    defaults = (data.get("defaults") or {}).get("set") or []
    steps: list[Step] = []
    for raw in data.get("steps") or []:
        where = f"{path}: step {raw.get('name', len(steps) + 1)!r}"
        bad = set(raw) - STEP_KEYS
        if bad:
            valid = ", ".join(sorted(STEP_KEYS))
            raise AffectlensError(f"{where}: unknown key(s) {', '.join(sorted(bad))}; valid: {valid}")
        step = Step(name=str(raw.get("name", "")), kind=str(raw.get("kind", "")), group=str(raw.get("group", "")),
                    what=str(raw.get("what", "")), config=raw.get("config"),
                    overrides=[str(v) for v in raw.get("set", [])], dataset=str(raw.get("dataset", "")),
                    source=raw.get("source"), epochs=raw.get("epochs"), lr=raw.get("lr"),
                    split=str(raw.get("split", "PrivateTest")), ten_crop=bool(raw.get("ten_crop", False)),
                    after=list(raw.get("after", [])), requires=list(raw.get("requires", [])))
        _check_step(step, steps, where)
        steps.append(step)
    if not steps:
        raise AffectlensError(f"{path}: the campaign has no steps")
    return Campaign(path, steps, [str(v) for v in defaults])


def _check_step(step: Step, earlier: list[Step], where: str) -> None:
    """Validate one step against the steps defined before it (dependencies must come first)."""
    if not NAME.match(step.name) or any(s.name == step.name for s in earlier):
        raise AffectlensError(f"{where}: a step needs a unique name of letters, digits, '_' and '-'")
    if step.kind not in STEP_KINDS:
        raise AffectlensError(f"{where}: kind must be one of {', '.join(STEP_KINDS)}")
    names = {s.name: s for s in earlier}
    for dep in step.dependencies:
        if dep not in names:
            raise AffectlensError(f"{where}: depends on '{dep}', which is not an earlier step")
    if step.kind == "train":
        if not step.config or not (ROOT / step.config).exists():
            raise AffectlensError(f"{where}: config {step.config!r} does not exist (paths are relative to {ROOT})")
        step.dataset = step.dataset or "fer2013"
    else:
        if not step.source:
            raise AffectlensError(f"{where}: a {step.kind} step needs a source step")
        step.dataset = step.dataset or names[step.source].dataset
    if step.kind == "finetune" and (step.epochs is None or step.lr is None):
        raise AffectlensError(f"{where}: a finetune step needs epochs and lr")
    if not NAME.match(step.dataset):
        raise AffectlensError(f"{where}: dataset {step.dataset!r} must be a folder name under --data-dir")


# ============================================================================== state and folders
def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class CampaignState:
    """campaign_state.json: per step its status and every invocation (command, outcome, positions)."""

    def __init__(self, campaign_dir: Path) -> None:
        self.path = campaign_dir / STATE_FILE
        self.data: dict[str, Any] = {"steps": {}, "machines": [], "updated": None}
        if self.path.exists():
            self.data = json.loads(self.path.read_text())

    def step(self, name: str) -> dict[str, Any]:
        return self.data["steps"].setdefault(name, {"status": "pending", "invocations": [], "restarts": 0,
                                                    "message": ""})

    def status(self, name: str) -> str:
        return self.data["steps"].get(name, {}).get("status", "pending")

    def has_run(self) -> bool:
        """Whether any step was ever started in this campaign."""
        return any(record.get("invocations") for record in self.data["steps"].values())

    def save(self) -> None:
        """Write to a temporary file and rename it: a kill at any moment leaves a whole state file."""
        self.data["updated"] = now_iso()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.data, indent=2) + "\n")
        os.replace(tmp, self.path)


@dataclass
class Layout:
    """Where a campaign keeps its runs (one folder per step), logs and abandoned attempts."""

    campaign_dir: Path

    @property
    def runs(self) -> Path:
        return self.campaign_dir / "runs"

    def run_dir(self, name: str) -> Path:
        return self.runs / name

    def log(self, name: str) -> Path:
        return self.campaign_dir / "logs" / f"{name}.log"


def rel(path: Path) -> str:
    """A path as the subprocesses (run from the checkout's root) should see it: relative when inside it,
    so that run folders stay valid when the checkout lies elsewhere on the next machine."""
    path = Path(os.path.abspath(path))
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


# ============================================================================ reading run folders
@dataclass
class RunNumbers:
    """What a run folder says about itself: every number the status and the summary print."""

    model: str = ""
    epochs_done: int | None = None
    epochs_total: int | None = None
    best_val_accuracy: float | None = None
    test_accuracy: float | None = None
    test_accuracy_tencrop: float | None = None
    test_macro_f1: float | None = None
    train_seconds: float | None = None
    seconds_per_epoch: float | None = None
    finished: bool = False


def _json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.exists() else None


def read_run(run_dir: Path) -> RunNumbers | None:
    """Numbers of a training run (metrics.json, summary.json, config.yaml) or an evaluation folder
    (evaluation.json, metrics.json); None when the folder does not exist."""
    if not run_dir.is_dir():
        return None
    evaluation = _json(run_dir / "evaluation.json")
    if evaluation is not None:
        metrics = _json(run_dir / "metrics.json") or {}
        numbers = RunNumbers(model=str(evaluation.get("architecture", "")), finished="accuracy" in metrics)
        key = "test_accuracy_tencrop" if evaluation.get("ten_crop") else "test_accuracy"
        setattr(numbers, key, metrics.get("accuracy"))
        numbers.test_macro_f1 = metrics.get("macro_f1")
        return numbers
    config = yaml.safe_load((run_dir / "config.yaml").read_text()) if (run_dir / "config.yaml").exists() else {}
    history = _json(run_dir / "metrics.json") or []
    summary = _json(run_dir / "summary.json") or {}
    model = config.get("model", {})
    options = ", ".join(f"{k} {v}" for k, v in (model.get("options") or {}).items())
    numbers = RunNumbers(model=str(model.get("name", "")) + (f" ({options})" if options else ""),
                         epochs_done=len(history), epochs_total=config.get("epochs"), finished=bool(summary))
    vals = [row["val_accuracy"] for row in history if "val_accuracy" in row]
    numbers.best_val_accuracy = max(vals) if vals else None
    seconds = [row["seconds"] for row in history if "seconds" in row]
    numbers.seconds_per_epoch = statistics.median(seconds) if seconds else None
    numbers.test_accuracy = summary.get("test_accuracy")
    numbers.test_accuracy_tencrop = summary.get("test_accuracy_tencrop")
    numbers.test_macro_f1 = summary.get("test_macro_f1")
    numbers.train_seconds = summary.get("train_seconds")
    return numbers


def checkpoint_position(run_dir: Path) -> list[int] | None:
    """``[epochs done, steps into the next epoch]`` of the run's checkpoint: recorded before and after
    every invocation, so the state shows that a resumed step went on from where it stopped. torch is
    imported before a step starts, never after its interruption, where its import time would run
    past the budget."""
    import torch

    path = run_dir / CHECKPOINT
    if not path.exists():
        return None
    state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    return [int(state["epoch"]), int(state["step_in_epoch"])]


def finished(run_dir: Path) -> bool:
    numbers = read_run(run_dir)
    return bool(numbers and numbers.finished)


# =================================================================================== subprocesses
def affectlens_command() -> list[str]:
    """``python -m affectlens`` where the package has a ``__main__``, else its CLI entry point."""
    if importlib.util.find_spec("affectlens.__main__") is not None:
        return [sys.executable, "-m", "affectlens"]
    return [sys.executable, "-c", "from affectlens.cli import main; main()"]


def child_env(extra_paths: list[Path]) -> dict[str, str]:
    """The steps' environment: the checkout (and wheels installed for the device) importable, unbuffered
    output, and tqdm bars at most once a minute so that logs stay small."""
    env = dict(os.environ)
    paths = [str(p) for p in extra_paths] + [str(ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("TQDM_MININTERVAL", "60")
    return env


class StopFlag:
    """Set by SIGINT/SIGTERM sent to the driver: the running step is then stopped gracefully."""

    requested = False

    @classmethod
    def install(cls) -> None:
        def handler(signum: int, frame: Any) -> None:
            cls.requested = True

        signal.signal(signal.SIGINT, handler)
        signal.signal(signal.SIGTERM, handler)


def stop_child(proc: subprocess.Popen, grace: float) -> int:
    """SIGINT (training saves nothing extra, but exits between steps, its checkpoint intact), then
    SIGTERM, then SIGKILL, each after its share of ``grace`` seconds."""
    for sig, wait in ((signal.SIGINT, 0.6 * grace), (signal.SIGTERM, 0.3 * grace), (signal.SIGKILL, None)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            return proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
    return proc.wait()


def run_child(command: list[str], log_path: Path, stop_at: float, grace: float,
              env: dict[str, str]) -> tuple[int, bool]:
    """Run one step's command, its output appended to its log; returns (exit code, interrupted)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        log.write(f"\n=== {now_iso()} {' '.join(command)}\n".encode())
        log.flush()
        # its own process group, so that signals reach the step and its workers (and a terminal's Ctrl-C
        # reaches the driver only), but the same session: the device tool ends everything a command leaves
        # running in its session, so no step can outlive a call and race the next call's resume
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, process_group=0)
        while True:
            try:
                return proc.wait(timeout=0.25), False
            except subprocess.TimeoutExpired:
                pass
            if clock() >= stop_at or StopFlag.requested:
                return stop_child(proc, grace), True


def log_tail(path: Path, lines: int = 12) -> str:
    if not path.exists():
        return ""
    with open(path, "rb") as handle:
        handle.seek(max(0, path.stat().st_size - 8192))
        text = handle.read().decode(errors="replace").replace("\r", "\n")
    return "\n".join([line for line in text.splitlines() if line.strip()][-lines:])


# ====================================================================================== launching
@dataclass
class Launch:
    """The affectlens arguments of one invocation of a step, and whether it resumes a checkpoint."""

    args: list[str]
    mode: str  # new | resume


def expand(value: str, layout: Layout) -> str:
    return value.replace("{runs}", rel(layout.runs))


def plan_launch(step: Step, layout: Layout, data_dir: Path, extra: list[str], device: str,
                campaign: Campaign) -> Launch:
    """The command that moves ``step`` on: resume its checkpoint if there is one, else start it.

    The driver's own settings (data path, run folder, device) come last so that no config can move a
    run out of the campaign folder."""
    run_dir = layout.run_dir(step.name)
    data = rel(data_dir / step.dataset)
    if step.kind == "evaluate":
        args = ["evaluate", "--model", rel(layout.run_dir(step.source or "")), "--data", data, "--split", step.split]
        return Launch(args + (["--ten-crop"] if step.ten_crop else []) + ["-o", rel(run_dir)], "new")
    if (run_dir / CHECKPOINT).exists():
        return Launch(["train", "--resume", rel(run_dir)], "resume")
    driver = [f"data.path={data}"] + ([f"device={device}"] if device != "auto" else [])
    if step.kind == "finetune":
        sets = [expand(v, layout) for v in [*step.overrides, *extra]] + driver
        args = ["finetune", rel(layout.run_dir(step.source or "")), "--epochs", str(step.epochs), "--lr", str(step.lr),
                "--run-name", step.name]
        return Launch(args + [a for v in sets for a in ("--set", v)], "new")
    sets = [expand(v, layout) for v in [*campaign.defaults, *step.overrides, *extra]]
    sets += driver + [f"output_dir={rel(layout.runs)}", f"run_name={step.name}"]
    return Launch(["train", "-c", str(step.config)] + [a for v in sets for a in ("--set", v)], "new")


def point_run_at_data(run_dir: Path, data: str) -> bool:
    """Before a resume: the run's config names the data where they lay when it started; on another
    machine (or checkout) they lie elsewhere. Only ``data.path`` changes; True if it did."""
    path = run_dir / "config.yaml"
    config = yaml.safe_load(path.read_text())
    if config.get("data", {}).get("path") == data:
        return False
    config["data"]["path"] = data
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return True


def why_waiting(step: Step, state: CampaignState, layout: Layout, data_dir: Path,
                sections: set[str] | None) -> str:
    """Why ``step`` cannot run now ('' when it can): unfinished dependencies, data not staged yet,
    weights that did not travel, or a training option that affectlens does not have yet."""
    pending = [d for d in step.dependencies if state.status(d) != "done"]
    if pending:
        return f"after {', '.join(pending)}"
    for name in step.weights_from:
        if not (layout.run_dir(name) / "best.safetensors").exists():
            return f"{rel(layout.run_dir(name))}/best.safetensors is not here (left out of a pack?)"
    if not dataset_ready(data_dir, step.dataset):
        return f"no {step.dataset} data in {rel(data_dir)} (stage it and carry its parts)"
    missing = [r for r in step.requires if sections is not None and r not in sections]
    if sections is None and step.requires:
        return "could not read affectlens' TrainConfig to check " + ", ".join(step.requires)
    if missing:
        return f"needs training option(s) {', '.join(missing)} (not in affectlens' TrainConfig yet)"
    return ""


def config_sections(env: dict[str, str]) -> set[str] | None:
    """Top-level TrainConfig fields, read in a subprocess with the steps' environment."""
    code = ("import json; from affectlens.training.config import TrainConfig; "
            "print(json.dumps(list(TrainConfig.model_fields)))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=300)
    if result.returncode != 0:
        print(f"could not import affectlens' TrainConfig: {result.stderr.strip().splitlines()[-1:]}", flush=True)
        return None
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


def abandon(run_dir: Path, layout: Layout) -> Path:
    """Move an unresumable run folder (no checkpoint) aside rather than delete what it holds."""
    target = layout.campaign_dir / "abandoned" / f"{run_dir.name}-{datetime.now():%Y%m%d-%H%M%S}"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(run_dir), str(target))
    return target


def machine_name() -> str:
    """The GPU's name from nvidia-smi, else the CPU count: recorded with every invocation."""
    if shutil.which("nvidia-smi"):
        result = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                                text=True, timeout=60)
        if result.returncode == 0 and result.stdout.strip():
            return result.stdout.strip().splitlines()[0]
    return f"CPU ({os.cpu_count()} cores)"


def run_step(step: Step, launch: Launch, layout: Layout, state: CampaignState, stop_at: float, grace: float,
             env: dict[str, str], machine: str) -> str:
    """One invocation of ``step``; updates and saves the state; returns the outcome."""
    run_dir = layout.run_dir(step.name)
    record = state.step(step.name)
    record["status"] = "running"
    start = checkpoint_position(run_dir) if step.kind != "evaluate" else None
    invocation = {"mode": launch.mode, "command": " ".join(["affectlens", *launch.args]), "started": now_iso(),
                  "machine": machine, "start_position": start}
    record["invocations"].append(invocation)
    state.save()
    started = clock()
    print(f"[{step.name}] {launch.mode}: {invocation['command']}", flush=True)
    rc, interrupted = run_child(affectlens_command() + launch.args, layout.log(step.name), stop_at, grace, env)
    invocation.update(seconds=round(clock() - started, 1), rc=rc)
    if step.kind != "evaluate":
        invocation["end_position"] = checkpoint_position(run_dir)
    if rc == 0 and finished(run_dir):
        outcome, record["status"], record["message"] = "finished", "done", ""
    elif interrupted:
        outcome, record["status"] = "interrupted", "running"
        cause = "a signal to the driver" if StopFlag.requested else "the budget"
        record["message"] = f"stopped by {cause}; the next run resumes it"
    else:
        outcome, record["status"] = "failed", "failed"
        record["message"] = log_tail(layout.log(step.name), 3).replace("\n", " | ")[-400:]
    invocation["outcome"] = outcome
    numbers = read_run(run_dir)
    if numbers is not None:
        record["epochs_done"] = numbers.epochs_done
    state.save()
    detail = ""
    if numbers is not None and numbers.epochs_done is not None:
        detail = f", epochs {numbers.epochs_done}/{numbers.epochs_total}"
    print(f"[{step.name}] {outcome} after {invocation['seconds']}s{detail}", flush=True)
    if outcome == "failed":
        print(log_tail(layout.log(step.name)), flush=True)
    return outcome


# ========================================================================================= run
def ensure_wheels(wheels_dir: Path, site_dir: Path) -> list[Path]:
    """Install the carried wheels (``.whl``) into ``site_dir`` when their modules are missing here.

    The device image has torch but not kornia; packages there must travel as wheels. A warm machine
    keeps ``site_dir``, so later calls need not carry the wheels again. Module names are taken from
    the wheels' distribution names (kornia, kornia_rs)."""
    if site_dir.is_dir():
        sys.path.insert(0, str(site_dir))
        importlib.invalidate_caches()
    wheels = sorted(wheels_dir.glob("*.whl"))
    missing = [w for w in wheels if importlib.util.find_spec(w.name.split("-")[0]) is None]
    if missing:
        print(f"installing {', '.join(w.name for w in wheels)} into {rel(site_dir)}", flush=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
                        "--no-cache-dir", "--upgrade", "--target", str(site_dir), *map(str, wheels)], check=True)
        if str(site_dir) not in sys.path:
            sys.path.insert(0, str(site_dir))
    return [site_dir] if site_dir.is_dir() else []


def cmd_run(args: argparse.Namespace) -> int:
    started = clock()
    deadline = started + args.budget_seconds
    stop_at = deadline - args.grace_seconds
    campaign = load_campaign(args.campaign)
    layout = Layout(args.campaign_dir)
    only = select_steps(campaign, args.only)
    state = CampaignState(layout.campaign_dir)
    if args.restore_from and (args.restore_from / PACK_MANIFEST).exists() and not state.has_run():
        # a fresh machine (or one that so far only received data): continue from the pack; a campaign
        # that has run here is newer than any pack and is kept
        print(f"no step has run in {rel(layout.campaign_dir)}: restoring it from {rel(args.restore_from)}")
        unpack(args.restore_from, layout.campaign_dir)
        state = CampaignState(layout.campaign_dir)
    for message in assemble_staged(args.data_dir):
        print(message, flush=True)
    machine = machine_name()
    if machine not in state.data["machines"]:
        state.data["machines"].append(machine)
    state.save()
    env = child_env(ensure_wheels(args.wheels_dir, args.site_dir))
    sections = config_sections(env) if any(s.requires for s in campaign.steps if s.name in only) else set()
    StopFlag.install()
    failures = 0
    for step in campaign.steps:
        if step.name not in only or state.status(step.name) == "done":
            continue
        if state.status(step.name) == "failed" and not args.retry_failed:
            print(f"[{step.name}] failed earlier (--retry-failed runs it again): {state.step(step.name)['message']}")
            continue
        reason = why_waiting(step, state, layout, args.data_dir, sections)
        if reason:
            print(f"[{step.name}] waiting: {reason}", flush=True)
            continue
        if StopFlag.requested or stop_at - clock() < args.min_slice_seconds:
            print(f"stopping: {max(0.0, deadline - clock()):.0f}s of the budget left, "
                  f"under --grace-seconds + --min-slice-seconds", flush=True)
            break
        run_dir = layout.run_dir(step.name)
        record = state.step(step.name)
        if step.kind == "evaluate" and run_dir.exists():
            shutil.rmtree(run_dir)  # an evaluation is redone whole; it has no checkpoint
        elif step.kind != "evaluate" and run_dir.exists() and not (run_dir / CHECKPOINT).exists():
            moved = abandon(run_dir, layout)
            record["restarts"] += 1
            print(f"[{step.name}] no {CHECKPOINT} in its run folder: starting again, the old one is in {rel(moved)}")
        elif (run_dir / CHECKPOINT).exists() and point_run_at_data(run_dir, rel(args.data_dir / step.dataset)):
            print(f"[{step.name}] data.path of the run now {rel(args.data_dir / step.dataset)}")
        launch = plan_launch(step, layout, args.data_dir, args.set or [], args.device, campaign)
        outcome = run_step(step, launch, layout, state, stop_at, args.grace_seconds, env, machine)
        failures += outcome == "failed"
        if outcome == "interrupted":
            break
    print_status(campaign, layout, state)
    print(f"run took {clock() - started:.0f}s of a {args.budget_seconds:.0f}s budget", flush=True)
    if StopFlag.requested:
        return 130
    return 1 if failures else 0


def select_steps(campaign: Campaign, only: str | None) -> set[str]:
    names = [s.name for s in campaign.steps]
    if not only:
        return set(names)
    chosen = [n.strip() for n in only.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in names]
    if unknown:
        raise AffectlensError(f"--only: unknown step(s) {', '.join(unknown)}; steps: {', '.join(names)}")
    return set(chosen)


# ====================================================================================== status
def pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.2f}"


def print_status(campaign: Campaign, layout: Layout, state: CampaignState) -> None:
    rows = []
    for step in campaign.steps:
        record = state.data["steps"].get(step.name, {})
        numbers = read_run(layout.run_dir(step.name)) or RunNumbers()
        status = record.get("status", "pending")
        if status == "pending":
            pending = [d for d in step.dependencies if state.status(d) != "done"]
            note = f"after {', '.join(pending)}" if pending else ""
        else:
            note = record.get("message", "")
        epochs = "—" if numbers.epochs_done is None else f"{numbers.epochs_done}/{numbers.epochs_total}"
        rows.append([step.name, step.kind, status, epochs, pct(numbers.best_val_accuracy), pct(numbers.test_accuracy),
                     pct(numbers.test_accuracy_tencrop), len(record.get("invocations", [])), note[:80]])
    header = ["step", "kind", "status", "epochs", "best val acc", "test acc", "test ten-crop", "invocations", "note"]
    print("\n".join(markdown_table(header, rows, right={3, 4, 5, 6, 7})), flush=True)


def cmd_status(args: argparse.Namespace) -> int:
    layout = Layout(args.campaign_dir)
    print_status(load_campaign(args.campaign), layout, CampaignState(layout.campaign_dir))
    return 0


# ================================================================================== data staging
def travelling_bytes() -> int:
    """Bytes of the checkout that every device call sends (tracked and untracked-not-ignored files)."""
    result = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True)
    files = [ROOT / p.decode() for p in result.stdout.split(b"\0") if p]
    return sum(f.stat().st_size for f in files if f.is_file())


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else 0


def sha256_of(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as handle:
            while chunk := handle.read(MIB):
                digest.update(chunk)
    return digest.hexdigest()


def cmd_stage(args: argparse.Namespace) -> int:
    if args.part_mib:
        part_bytes = int(args.part_mib * MIB)
    else:
        tree, wheels = travelling_bytes(), folder_bytes(args.wheels_dir)
        part_bytes = DEVICE_TREE_MIB * MIB - tree - wheels - MIB
        print(f"every call sends the checkout ({tree / MIB:.1f} MiB); the first also {rel(args.wheels_dir)} "
              f"({wheels / MIB:.1f} MiB); the device limit is {DEVICE_TREE_MIB} MiB with 1 MiB kept spare")
        if part_bytes < 4 * MIB:
            raise AffectlensError("the checkout leaves under 4 MiB for data in a device call; pass --part-mib")
    calls: list[list[str]] = []
    for name in [n.strip() for n in args.datasets.split(",") if n.strip()]:
        source = sorted((args.source / name).glob("*.npz"))
        if len(source) != 1:
            raise AffectlensError(f"{args.source / name}: expected one .npz file, found {len(source)}")
        npz = source[0]
        size = npz.stat().st_size
        count = -(-size // part_bytes)
        for old in args.out.glob(f"{name}.part*of*"):
            shutil.rmtree(old)
        digest = sha256_of([npz])
        with open(npz, "rb") as handle:
            for k in range(1, count + 1):
                folder = args.out / f"{name}.part{k}of{count}"
                folder.mkdir(parents=True)
                chunk = handle.read(part_bytes)
                (folder / f"{npz.name}.{k}").write_bytes(chunk)
                meta = {"dataset": name, "file": npz.name, "bytes": size, "sha256": digest, "part": k, "parts": count}
                (folder / "part.json").write_text(json.dumps(meta, indent=2) + "\n")
                calls.append([rel(folder)])
        print(f"{name}: {npz.name} ({size / MIB:.1f} MiB) in {count} part(s) of at most {part_bytes / MIB:.1f} MiB "
              f"under {rel(args.out)}/")
    if calls and args.wheels_dir.is_dir():
        calls[0].insert(0, rel(args.wheels_dir))
    for i, carry in enumerate(calls, 1):
        print(f"device call {i}: carry {json.dumps(carry)}")
    return 0


def assemble_staged(data_dir: Path) -> list[str]:
    """Join the parts that came with this and earlier calls; a dataset is used only once whole and
    its sha256 matches. Parts are removed once joined (a warm machine keeps the joined file)."""
    messages = []
    groups: dict[str, list[dict]] = {}
    for meta_path in sorted(data_dir.glob("*.part*of*/part.json")):
        meta = json.loads(meta_path.read_text())
        meta["folder"] = meta_path.parent
        groups.setdefault(meta["dataset"], []).append(meta)
    for name, parts in groups.items():
        first = parts[0]
        target = data_dir / name / first["file"]
        have = sorted({p["part"] for p in parts if p["sha256"] == first["sha256"]})
        if target.exists() and target.stat().st_size == first["bytes"] and sha256_of([target]) == first["sha256"]:
            messages.append(f"{name}: already joined in {rel(target)}")
        elif len(have) < first["parts"]:
            missing = sorted(set(range(1, first["parts"] + 1)) - set(have))
            messages.append(f"{name}: {len(have)} of {first['parts']} parts here; carry part(s) "
                            f"{', '.join(map(str, missing))} in the next call(s)")
            continue
        else:
            chunks = [next(p for p in parts if p["part"] == k)["folder"] / f"{first['file']}.{k}"
                      for k in range(1, first["parts"] + 1)]
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_suffix(".tmp")
            with open(tmp, "wb") as out:
                for chunk in chunks:
                    with open(chunk, "rb") as handle:
                        shutil.copyfileobj(handle, out, MIB)
            if tmp.stat().st_size != first["bytes"] or sha256_of([tmp]) != first["sha256"]:
                tmp.unlink()
                raise AffectlensError(f"{name}: the joined parts do not match their sha256; stage and carry them again")
            os.replace(tmp, target)
            messages.append(f"{name}: joined {first['parts']} part(s) into {rel(target)}")
        for part in parts:
            shutil.rmtree(part["folder"])
    return messages


def dataset_ready(data_dir: Path, name: str) -> bool:
    folder = data_dir / name
    return folder.is_dir() and any(folder.glob("*.npz"))


# ============================================================================= collect and unpack
@dataclass
class PackItem:
    path: Path
    arcname: str
    size: int
    priority: int  # 0 small results, 1 resume checkpoints, 2 best weights, 3 last weights, 4 finished checkpoints

    @property
    def tar_bytes(self) -> int:
        return 1536 + -(-self.size // 512) * 512  # header (+ a long-name header) and the data in 512-byte blocks


def campaign_files(layout: Layout) -> Iterator[Path]:
    """Every file of the campaign that belongs in a copy: not abandoned attempts, not half-written temporaries."""
    for path in sorted(layout.campaign_dir.rglob("*")):
        parts = path.relative_to(layout.campaign_dir).parts
        if path.is_file() and parts[0] != "abandoned" and not path.name.endswith(".tmp"):
            yield path


def pack_items(layout: Layout, state: CampaignState, with_checkpoints: bool) -> tuple[list[PackItem], list[dict]]:
    items, left_out = [], []
    for path in campaign_files(layout):
        arcname = str(path.relative_to(layout.campaign_dir))
        size = path.stat().st_size
        if path.parent.name == "logs":
            size = min(size, LOG_TAIL_BYTES)
        step_done = path.parent.parent == layout.runs and state.status(path.parent.name) == "done"
        if path.name == CHECKPOINT:
            if step_done and not with_checkpoints:
                left_out.append({"path": arcname, "bytes": size, "why": "finished step (--with-checkpoints)"})
                continue
            priority = 4 if step_done else 1
        elif path.suffix == ".safetensors":
            priority = 3 if path.name.startswith("last") else 2
        else:
            priority = 0
        items.append(PackItem(path, arcname, size, priority))
    return items, left_out


class SplitWriter:
    """A write-only stream cut into numbered files of ``part_bytes`` (each under the $OUT file limit)."""

    def __init__(self, folder: Path, part_bytes: int) -> None:
        self.folder, self.part_bytes = folder, part_bytes
        self.names: list[str] = []
        self.handle: Any = None
        self.written = 0
        self.total = 0
        self.digest = hashlib.sha256()

    def write(self, data: bytes) -> int:
        view = memoryview(data)
        while len(view):
            if self.handle is None or self.written == self.part_bytes:
                self._next()
            take = min(len(view), self.part_bytes - self.written)
            self.handle.write(view[:take])
            self.digest.update(view[:take])
            self.written += take
            self.total += take
            view = view[take:]
        return len(data)

    def _next(self) -> None:
        if self.handle is not None:
            self.handle.close()
        self.names.append(PACK_PART.format(len(self.names)))
        self.handle = open(self.folder / self.names[-1], "wb")
        self.written = 0

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()


class ChainReader(io.RawIOBase):
    """The parts of a pack read back as one stream."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths = list(paths)
        self.handle: Any = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while True:
            if self.handle is None:
                if not self.paths:
                    return 0
                self.handle = open(self.paths.pop(0), "rb")
            n = self.handle.readinto(buffer)
            if n:
                return n
            self.handle.close()
            self.handle = None


def pack(layout: Layout, out: Path, max_bytes: int, part_bytes: int, with_checkpoints: bool) -> dict:
    """Write the campaign as tar parts plus campaign-pack.json into ``out``: small results first, then
    resume checkpoints, best weights, last weights, smallest first, while they fit in ``max_bytes``."""
    state = CampaignState(layout.campaign_dir)
    items, left_out = pack_items(layout, state, with_checkpoints)
    chosen, used = [], 10240  # the end-of-archive blocks, rounded up to tar's record size
    for item in sorted(items, key=lambda i: (i.priority, i.size)):
        if used + item.tar_bytes <= max_bytes:
            chosen.append(item)
            used += item.tar_bytes
        else:
            why = f"over the {max_bytes / MIB:.0f} MiB pack"
            left_out.append({"path": item.arcname, "bytes": item.size, "why": why})
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("campaign-pack.*"):
        old.unlink()
    writer = SplitWriter(out, part_bytes)
    with tarfile.open(fileobj=writer, mode="w|") as tar:  # type: ignore[call-overload]
        for item in sorted(chosen, key=lambda i: i.arcname):
            if item.path.parent.name == "logs":  # the end of a log says what happened last
                with open(item.path, "rb") as handle:
                    handle.seek(max(0, item.path.stat().st_size - LOG_TAIL_BYTES))
                    data = handle.read()
                info = tarfile.TarInfo(item.arcname)
                info.size, info.mtime = len(data), int(item.path.stat().st_mtime)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.add(item.path, arcname=item.arcname, recursive=False)
    writer.close()
    manifest = {"format": 1, "created": now_iso(), "parts": writer.names, "bytes": writer.total,
                "sha256": writer.digest.hexdigest(), "files": len(chosen), "left_out": left_out}
    (out / PACK_MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def unpack(source: Path, campaign_dir: Path) -> dict:
    """Restore a pack into ``campaign_dir`` (its files replace those there) after checking its sha256."""
    manifest_path = source / PACK_MANIFEST
    if not manifest_path.exists():
        raise AffectlensError(f"{source}: no {PACK_MANIFEST} (not a folder written by collect --pack)")
    manifest = json.loads(manifest_path.read_text())
    parts = [source / name for name in manifest["parts"]]
    absent = [p.name for p in parts if not p.exists()]
    if absent:
        raise AffectlensError(f"{source}: pack part(s) {', '.join(absent)} missing")
    if sha256_of(parts) != manifest["sha256"]:
        raise AffectlensError(f"{source}: the pack's parts do not match their sha256 (incomplete copy?)")
    campaign_dir.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=ChainReader(parts), mode="r|") as tar:  # type: ignore[call-overload]
        tar.extractall(campaign_dir, filter="data")
    return manifest


def cmd_collect(args: argparse.Namespace) -> int:
    layout = Layout(args.campaign_dir)
    if not (layout.campaign_dir / STATE_FILE).exists():
        raise AffectlensError(f"{layout.campaign_dir}: no {STATE_FILE} (not a campaign folder)")
    if args.pack:
        if not CampaignState(layout.campaign_dir).has_run():
            # a call that only brought data: no pack, so that none replaces a useful one kept for a fresh machine
            print("no step has run in this campaign yet: no pack written")
            return 0
        if args.max_mib / PACK_PART_MIB > 7:
            raise AffectlensError(f"--max-mib {args.max_mib}: $OUT brings back 8 files; at most {7 * PACK_PART_MIB}")
        manifest = pack(layout, args.out, int(args.max_mib * MIB), PACK_PART_MIB * MIB, args.with_checkpoints)
        print(f"packed {manifest['files']} files ({manifest['bytes'] / MIB:.1f} MiB) into {len(manifest['parts'])} "
              f"part(s) + {PACK_MANIFEST} in {args.out}")
        for item in manifest["left_out"]:
            print(f"  left out {item['path']} ({item['bytes'] / MIB:.1f} MiB): {item['why']}")
        return 0
    copied = 0
    for path in campaign_files(layout):
        if path.name == CHECKPOINT and not args.with_checkpoints:
            continue
        target = args.out / path.relative_to(layout.campaign_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
        copied += 1
    print(f"copied {copied} files of {layout.campaign_dir} to {args.out}")
    return 0


def cmd_unpack(args: argparse.Namespace) -> int:
    manifest = unpack(args.source, args.campaign_dir)
    print(f"restored {manifest['files']} files (pack of {manifest['created']}) into {args.campaign_dir}")
    for item in manifest["left_out"]:
        print(f"  not in the pack: {item['path']} ({item['bytes'] / MIB:.1f} MiB): {item['why']}")
    return 0


# ===================================================================================== summary
def summary_lines(campaign: Campaign, layout: Layout, state: CampaignState, command: str) -> list[str]:
    """The Markdown report: one table per group of finished steps, then every run's commands."""
    lines = ["# GPU campaign (issue 9)", "",
             f"Generated by `{command}` from the run folders of `{rel(layout.campaign_dir)}`; "
             f"machines: {', '.join(state.data.get('machines', [])) or 'none recorded'}.",
             "val = the run's validation split (PublicTest), test = its test split (PrivateTest); accuracies in %.",
             ""]
    header = ["step", "what", "model", "epochs", "best val acc", "test acc", "test ten-crop", "test macro-F1",
              "s/epoch", "train time"]
    groups = list(dict.fromkeys(s.group or "other" for s in campaign.steps))
    unfinished = []
    for group in groups:
        rows = []
        for step in (s for s in campaign.steps if (s.group or "other") == group):
            numbers = read_run(layout.run_dir(step.name))
            if state.status(step.name) != "done" or numbers is None:
                unfinished.append(f"- {step.name}: {state.status(step.name)}")
                continue
            rows.append([step.name, step.what, numbers.model, numbers.epochs_done if numbers.epochs_done else "—",
                         pct(numbers.best_val_accuracy), pct(numbers.test_accuracy),
                         pct(numbers.test_accuracy_tencrop),
                         "—" if numbers.test_macro_f1 is None else f"{numbers.test_macro_f1:.3f}",
                         "—" if numbers.seconds_per_epoch is None else f"{numbers.seconds_per_epoch:.1f}",
                         "—" if numbers.train_seconds is None else f"{numbers.train_seconds / 60:.1f} min"])
        if rows:
            lines += [f"## {group}", "", *markdown_table(header, rows, right={3, 4, 5, 6, 7, 8, 9}), ""]
    lines += ["## Commands", "", "Each run's first command (from the checkout's root); a resumed run then ran "
              "`affectlens train --resume RUN` the number of times given.", ""]
    for step in campaign.steps:
        invocations = state.data["steps"].get(step.name, {}).get("invocations", [])
        if state.status(step.name) == "done" and invocations:
            resumes = sum(i["mode"] == "resume" for i in invocations)
            more = f" (+{resumes} resumes)" if resumes else ""
            lines.append(f"- {step.name}: `{invocations[0]['command']}`{more}")
    if unfinished:
        lines += ["", "## Not finished", "", *unfinished]
    return lines + [""]


def cmd_summary(args: argparse.Namespace) -> int:
    layout = Layout(args.campaign_dir)
    state = CampaignState(layout.campaign_dir)
    command = f"python tools/gpu_campaign.py summary --campaign-dir {rel(layout.campaign_dir)}"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(summary_lines(load_campaign(args.campaign), layout, state, command)))
    print(f"wrote {args.out}")
    return 0


# ========================================================================================= main
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    def campaign_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--campaign", type=Path, default=DEFAULT_CAMPAIGN, help="campaign definition (YAML)")
        p.add_argument("--campaign-dir", type=Path, required=True, help="folder of the state, runs and logs")

    run = sub.add_parser("run", help="do as much of the campaign as fits in the budget")
    campaign_options(run)
    run.add_argument("--budget-seconds", type=float, required=True, help="the run ends before this many seconds")
    run.add_argument("--data-dir", type=Path, default=ROOT / ".gpu_data",
                     help="folder holding fer2013/ and ferplus/ (or their staged parts)")
    run.add_argument("--only", help="comma-separated steps to run (their dependencies must be done)")
    run.add_argument("--set", action="append", metavar="KEY=VALUE",
                     help="extra override for steps started now (not resumed ones), e.g. epochs=1")
    run.add_argument("--device", default="auto", help="training device (cuda makes a missing GPU an error)")
    run.add_argument("--grace-seconds", type=float, default=30.0,
                     help="a step is interrupted this long before the budget ends, to exit cleanly")
    run.add_argument("--min-slice-seconds", type=float, default=60.0,
                     help="start no step with less time than this before the interruption")
    run.add_argument("--retry-failed", action="store_true", help="run failed steps again")
    run.add_argument("--restore-from", type=Path, help="a pack to restore when the campaign folder holds none")
    run.add_argument("--wheels-dir", type=Path, default=ROOT / ".whl", help="wheels to install when missing")
    run.add_argument("--site-dir", type=Path, default=ROOT / ".gpu_site", help="where those wheels are installed")

    status = sub.add_parser("status", help="table of the steps")
    campaign_options(status)

    collect = sub.add_parser("collect", help="copy (or --pack) the run folders to --out")
    collect.add_argument("--campaign-dir", type=Path, required=True)
    collect.add_argument("--out", type=Path, required=True)
    collect.add_argument("--pack", action="store_true", help=f"tar parts of {PACK_PART_MIB} MiB + a manifest, for $OUT")
    collect.add_argument("--max-mib", type=float, default=PACK_MAX_MIB, help="size of a pack (with --pack)")
    collect.add_argument("--with-checkpoints", action="store_true", help="also finished runs' checkpoint.pt")

    unpack_parser = sub.add_parser("unpack", help="restore a pack written by collect --pack")
    unpack_parser.add_argument("--from", dest="source", type=Path, required=True)
    unpack_parser.add_argument("--campaign-dir", type=Path, required=True)

    summary = sub.add_parser("summary", help="Markdown tables of the finished runs")
    campaign_options(summary)
    summary.add_argument("--out", type=Path, default=DEFAULT_SUMMARY)

    stage = sub.add_parser("stage", help="split the npz files into parts that can travel to the device")
    stage.add_argument("--source", type=Path, default=ROOT.parent / "shared" / "data")
    stage.add_argument("--datasets", default="fer2013", help="comma-separated: fer2013, ferplus")
    stage.add_argument("--out", type=Path, default=ROOT / ".gpu_data")
    stage.add_argument("--part-mib", type=float, help="part size (default: what a device call leaves free)")
    stage.add_argument("--wheels-dir", type=Path, default=ROOT / ".whl")
    return parser.parse_args(argv)


COMMANDS = {"run": cmd_run, "status": cmd_status, "collect": cmd_collect, "unpack": cmd_unpack,
            "summary": cmd_summary, "stage": cmd_stage}


def main(argv: list[str] | None = None) -> int:
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # progress shows as it happens
    args = parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except AffectlensError as exc:
        print(f"gpu_campaign: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
