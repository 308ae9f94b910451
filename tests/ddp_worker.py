"""``affectlens`` as torchrun starts it, with two test instruments (used by test_distributed.py).

``AFFECTLENS_AUDIT_DIR``: every file-system write under ``AFFECTLENS_AUDIT_ROOT`` (open for writing,
mkdir, rename, remove) is recorded through Python's audit hooks and listed, per rank, in
``AUDIT_DIR/rank<R>.json`` at exit, so a test can show which process wrote the run folder.

``AFFECTLENS_KILL_AT=EPOCH:STEP``: rank 1 kills itself (SIGKILL, no clean-up) right after the
checkpoint of that epoch and step is on disk, like a machine lost in the middle of a run.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import sys
from pathlib import Path

WRITE_EVENTS = {"os.mkdir", "os.rename", "os.remove", "os.rmdir", "shutil.rmtree"}


def install_audit(audit_dir: Path, root: Path) -> None:
    rank = os.environ.get("RANK", "0")
    writes: list[str] = []
    root_text = str(root.resolve())

    def under_root(path: object) -> bool:
        try:
            return os.path.abspath(os.fsdecode(path)).startswith(root_text)  # type: ignore[arg-type]
        except TypeError:
            return False

    def hook(event: str, args: tuple) -> None:
        if event == "open" and args and under_root(args[0]):
            mode, flags = args[1], args[2] if len(args) > 2 else 0
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or \
                (mode is None and isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))
            if writing:
                writes.append(f"open {os.fsdecode(args[0])}")
        elif event in WRITE_EVENTS and args and under_root(args[0]):
            writes.append(f"{event} {os.fsdecode(args[0])}")

    def dump() -> None:
        (audit_dir / f"rank{rank}.json").write_text(json.dumps(writes))

    sys.addaudithook(hook)
    atexit.register(dump)


def install_kill(at: str) -> None:
    from affectlens.training import loop

    epoch, step = (int(x) for x in at.split(":"))
    save = loop.Trainer.save_checkpoint

    def save_then_die(self: loop.Trainer) -> None:
        save(self)  # returns once rank 0 has the checkpoint on disk (a barrier)
        if self.dist.rank == 1 and (self.epoch, self.step_in_epoch) == (epoch, step):
            os.kill(os.getpid(), signal.SIGKILL)

    loop.Trainer.save_checkpoint = save_then_die  # type: ignore[method-assign]


if __name__ == "__main__":
    if os.environ.get("AFFECTLENS_AUDIT_DIR"):
        install_audit(Path(os.environ["AFFECTLENS_AUDIT_DIR"]), Path(os.environ["AFFECTLENS_AUDIT_ROOT"]))
    if os.environ.get("AFFECTLENS_KILL_AT"):
        install_kill(os.environ["AFFECTLENS_KILL_AT"])
    from affectlens.cli import main

    main(sys.argv[1:])
