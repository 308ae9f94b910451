"""FER+ on a lent GPU in one sitting (issue 25): several runs side by side on one device, sized to its time.

Why this exists beside ``tools/gpu_campaign.py``: that driver walks issue 9's long campaign in
resumable 10-minute slices. A session is lent about 15 minutes of device time in all, so the FER+
question ("how far does a longer schedule take a VGG on the crowd's votes?") has to be answered in
*one* call, and the answer must come back through the device tool's narrow door (the checkout and
carried paths: 64 MiB a call; back: at most 8 files, 64 MiB together). Hence:

* ``pack`` (here): the FER+ npz (78 MB) does not fit beside the checkout in one call, so its arrays
  travel xz-compressed in two halves, one per call, with the sha256 of the (uncompressed) npz that
  the device rebuilds.
* ``run`` (on the device): installs carried wheels, rebuilds and checks the npz, times two epochs of
  every run side by side, then gives each run as many epochs as fit in ``--budget-seconds`` (one-cycle
  schedules need their length up front), trains them side by side, and packs every run folder (no
  checkpoints; weights as float16, which halves them) into parts under ``--out``.
* ``unpack`` (here): restores the run folders (weights back to float32) for ``ship_model.py``, which
  measures every number afresh on this machine: nothing measured on the device is reported as is.

The runs are :data:`RUNS`. Commands for a session (``carry`` lists the ignored paths each call needs)::

    python tools/gpu_ferplus.py pack --work .gpu_ferplus                 # here, once
    # device call 1, carry [".gpu_ferplus/part1"]:                       true
    # device call 2 (within 30 s, warm machine), carry [".gpu_ferplus/part2", ".whl", <init weights>]:
    python3 tools/gpu_ferplus.py run --work .gpu_ferplus --budget-seconds 500 --out $OUT
    python tools/gpu_ferplus.py unpack --from <files_at> --to runs/gpu_ferplus   # here

A run cut short at the deadline continues on the still-warm machine with ``affectlens train --resume
.gpu_ferplus/runs/<name>`` (``PYTHONPATH=/tmp/affectlens-site:.``); carry the init weights again in
that call, since the run's config names them and a carried path does not stay on the machine.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import lzma
import math
import os
import signal
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_FERPLUS = ROOT.parent / "shared" / "data" / "ferplus" / "ferplus.npz"
PART_NAMES = ("part1", "part2")
PACK_PART_BYTES = 15 * 2**20
PROBE_EPOCHS = 2
EPOCH_MARGIN = 0.85


@dataclass(frozen=True)
class Run:
    """One training run: a config plus ``--set`` overrides (the epochs are added by ``run``)."""

    name: str
    config: str
    overrides: tuple[str, ...] = field(default_factory=tuple)


#: The sprint's runs, chosen before it: the shipped recipe (half-width VGG from the FER2013 default,
#: soft targets) with the schedule the CPU could not afford, the same with a second seed (an
#: ensemble candidate), and the paper's full-width VGG from scratch on the same budget.
RUNS = (
    Run("small_transfer_s0", "configs/ferplus_vgg_small_transfer.yaml", ("seed=0",)),
    Run("small_transfer_s1", "configs/ferplus_vgg_small_transfer.yaml", ("seed=1",)),
    Run("full_scratch", "configs/gpu/ferplus_vgg_paper.yaml",
        ("scheduler.name=onecycle", "scheduler.max_lr=0.02", "scheduler.pct_start=0.15", "batch_size=128",
         "optim.lr=0.002", "optim.weight_decay=0.0005")),
)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ============================================================================================ pack
def cmd_pack(args: argparse.Namespace) -> int:
    import numpy as np

    # the npz is deflated already; xz of its raw arrays (an uncompressed npz) is a quarter smaller
    with np.load(args.npz) as source:
        arrays = {key: source[key] for key in source.files}
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    data = buffer.getvalue()
    packed = lzma.compress(data, preset=9 | lzma.PRESET_EXTREME)
    half = math.ceil(len(packed) / 2)
    for index, name in enumerate(PART_NAMES):
        folder = args.work / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "ferplus.npz.xz.part").write_bytes(packed[index * half:(index + 1) * half])
    manifest = {"npz_sha256": hashlib.sha256(data).hexdigest(), "npz_bytes": len(data), "xz_bytes": len(packed)}
    (args.work / PART_NAMES[-1] / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"{args.npz} -> {len(packed) / 2**20:.1f} MiB of xz in {args.work}/{{{','.join(PART_NAMES)}}}")
    return 0


# ============================================================================================= run
def install_wheels(wheels: Path, site: Path) -> None:
    found = sorted(wheels.glob("*.whl"))
    if found and not site.is_dir():
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
                        "--no-cache-dir", "--target", str(site), *map(str, found)], check=True)


def rebuild_npz(work: Path) -> Path:
    """Join the halves into ``work/data/ferplus.npz`` and check it against the manifest."""
    target = work / "data" / "ferplus.npz"
    manifest = json.loads((work / PART_NAMES[-1] / "manifest.json").read_text())
    if not target.exists():
        packed = b"".join((work / name / "ferplus.npz.xz.part").read_bytes() for name in PART_NAMES)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(lzma.decompress(packed))
    if sha256_file(target) != manifest["npz_sha256"]:
        raise SystemExit(f"{target}: sha256 differs from the manifest; the parts are not the packed ones")
    return target


def child_env(site: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env["PYTHONUNBUFFERED"] = "1"
    env["TQDM_MININTERVAL"] = "60"
    return env


def launch(run: Run, epochs: int, out: Path, data: Path, env: dict[str, str],
           extra: list[str]) -> subprocess.Popen:
    command = [sys.executable, "-m", "affectlens", "train", "-c", run.config, "--out", str(out),
               "--run-name", run.name, "--set", f"data.path={data}", "--set", f"epochs={epochs}",
               "--set", "threads=4", "--set", "checkpoint_every_steps=100000"]
    for item in (*run.overrides, *extra):
        command += ["--set", item]
    out.mkdir(parents=True, exist_ok=True)
    log = open(out / f"{run.name}.log", "ab")
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, process_group=0)


def wait_all(procs: dict[str, subprocess.Popen], deadline: float) -> dict[str, int]:
    """Wait for every run; at the deadline SIGINT the rest (their best weights are already saved)."""
    codes: dict[str, int] = {}
    while len(codes) < len(procs):
        for name, proc in procs.items():
            if name not in codes and proc.poll() is not None:
                codes[name] = proc.returncode
        if time.monotonic() > deadline:
            for name, proc in procs.items():
                if name not in codes:
                    os.killpg(proc.pid, signal.SIGINT)
                    try:
                        codes[name] = proc.wait(timeout=20)
                    except subprocess.TimeoutExpired:
                        os.killpg(proc.pid, signal.SIGKILL)
                        codes[name] = proc.wait()
        time.sleep(1)
    return codes


def epoch_seconds(run_dir: Path) -> float:
    history = json.loads((run_dir / "metrics.json").read_text())
    return float(history[-1]["seconds"])


def cmd_run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    deadline = started + args.budget_seconds
    site = Path("/tmp/affectlens-site")
    install_wheels(args.wheels, site)
    data = rebuild_npz(args.work)
    env = child_env(site)
    log_lines: list[str] = []

    def say(line: str) -> None:
        print(line, flush=True)
        log_lines.append(line)

    probe_dir = args.work / "probe"
    probe_start = time.monotonic()
    codes = wait_all({r.name: launch(r, PROBE_EPOCHS, probe_dir, data.parent, env, args.set) for r in RUNS},
                     started + args.budget_seconds / 3)
    probe_wall = time.monotonic() - probe_start
    per_epoch = {}
    for run in RUNS:
        try:
            per_epoch[run.name] = epoch_seconds(probe_dir / run.name)
        except (OSError, ValueError, KeyError, IndexError):
            say(f"probe of {run.name} failed (exit {codes.get(run.name)}); log tail:")
            say((probe_dir / f"{run.name}.log").read_text()[-3000:])
    # the probe's own wall time less its epochs is the start-up and final-test cost of one run
    overhead = max(probe_wall - PROBE_EPOCHS * max(per_epoch.values(), default=0.0), 20.0) + 15.0
    available = deadline - time.monotonic() - overhead - args.pack_seconds
    # side by side, epochs ran 5% slower after the probe than in it (first sprint: 6.2 -> 6.5 s), and
    # a run cut at the deadline ends mid-schedule: plan for a margin
    plan = {name: max(1, min(args.max_epochs, int(EPOCH_MARGIN * available / seconds)))
            for name, seconds in per_epoch.items()}
    say(f"probe: {probe_wall:.0f} s wall, seconds/epoch side by side {per_epoch}; "
        f"{available:.0f} s left -> epochs {plan}")
    runs_dir = args.work / "runs"
    procs = {r.name: launch(r, plan[r.name], runs_dir, data.parent, env, args.set) for r in RUNS if r.name in plan}
    codes = wait_all(procs, deadline - args.pack_seconds)
    say(f"exit codes {codes}; {time.monotonic() - started:.0f} s since start")
    for name in procs:
        summary = runs_dir / name / "summary.json"
        say(f"{name}: {summary.read_text() if summary.exists() else 'no summary'}")
    (runs_dir / "sprint.log").write_text("\n".join(log_lines) + "\n")
    pack_runs(runs_dir, args.out)
    return 0


def half_precision(path: Path) -> bytes:
    """A safetensors file with its float32 tensors stored as float16 (halves what must travel back)."""
    from safetensors.numpy import load_file, save

    tensors = {k: (v.astype("float16") if v.dtype == "float32" else v) for k, v in load_file(str(path)).items()}
    with open(path, "rb") as f:
        header_len = int.from_bytes(f.read(8), "little")
        metadata = json.loads(f.read(header_len)).get("__metadata__", {})
    return save(tensors, metadata={**metadata, "transported_as": "float16"})


def weights_that_fit(runs_dir: Path, budget: int) -> set[Path]:
    """Best weights to bring back, best validation first, while their float16 size fits ``budget``
    (the tool brings back 64 MiB in all; a full-width VGG alone is 57 MiB in float16)."""
    ranked = []
    for history in runs_dir.glob("*/metrics.json"):
        # the history, not summary.json: a run stopped at the deadline has no summary but its best weights
        best = max((row.get("val_accuracy", 0.0) for row in json.loads(history.read_text())), default=0.0)
        ranked.append((-best, history.parent / "best.safetensors"))
    chosen, used = set(), 0
    for _, path in sorted(ranked):
        size = path.stat().st_size // 2 if path.exists() else 0
        if path.exists() and used + size <= budget:
            chosen.add(path)
            used += size
    return chosen


def pack_runs(runs_dir: Path, out: Path, weights_budget: int = 58 * 2**20) -> None:
    """Every run folder's small files and the best weights that fit (float16) in one tar.gz, cut into parts."""
    keep = weights_that_fit(runs_dir, weights_budget)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(runs_dir.rglob("*")):
            if not path.is_file() or path.name in ("checkpoint.pt", "last.safetensors") or path.suffix == ".onnx":
                continue
            if path.suffix == ".safetensors" and path not in keep:
                continue
            name = str(path.relative_to(runs_dir))
            data = half_precision(path) if path.suffix == ".safetensors" else path.read_bytes()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    blob = buffer.getvalue()
    out.mkdir(parents=True, exist_ok=True)
    for index in range(math.ceil(len(blob) / PACK_PART_BYTES)):
        (out / f"runs.tgz.{index:02d}").write_bytes(blob[index * PACK_PART_BYTES:(index + 1) * PACK_PART_BYTES])
    print(f"packed {len(blob) / 2**20:.1f} MiB into {out}")


# ========================================================================================== unpack
def cmd_unpack(args: argparse.Namespace) -> int:
    from safetensors.numpy import load_file, save_file

    blob = b"".join(p.read_bytes() for p in sorted(args.source.glob("runs.tgz.*")))
    args.to.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
        tar.extractall(args.to, filter="data")
    for path in args.to.rglob("*.safetensors"):
        with open(path, "rb") as f:
            header_len = int.from_bytes(f.read(8), "little")
            metadata = json.loads(f.read(header_len)).get("__metadata__", {})
        metadata.pop("transported_as", None)
        tensors = {k: (v.astype("float32") if v.dtype == "float16" else v) for k, v in load_file(str(path)).items()}
        save_file(tensors, str(path), metadata=metadata)
    print(f"restored {sum(1 for _ in args.to.rglob('best.safetensors'))} runs into {args.to}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack", help="here: the FER+ npz as two xz halves")
    p.add_argument("--npz", type=Path, default=SHARED_FERPLUS)
    p.add_argument("--work", type=Path, default=Path(".gpu_ferplus"))
    p.set_defaults(func=cmd_pack)
    p = sub.add_parser("run", help="on the device: probe, then train every run side by side")
    p.add_argument("--work", type=Path, default=Path(".gpu_ferplus"))
    p.add_argument("--wheels", type=Path, default=Path(".whl"))
    p.add_argument("--budget-seconds", type=float, required=True)
    p.add_argument("--pack-seconds", type=float, default=40.0)
    p.add_argument("--max-epochs", type=int, default=200)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--set", action="append", default=["device=cuda"],
                   help="more --set items for every run (smoke test: --set device=cpu --set data.max_per_split=64)")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("unpack", help="here: restore the run folders (weights back to float32)")
    p.add_argument("--from", dest="source", type=Path, required=True)
    p.add_argument("--to", type=Path, required=True)
    p.set_defaults(func=cmd_unpack)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
