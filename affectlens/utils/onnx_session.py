"""One way to open an ONNX Runtime session, shared by the face detector and the classifiers.

Both run between each other's calls in the video loop on a few CPU cores, so both want the same
settings: a bounded intra-op pool, no inter-op parallelism, full graph optimisation and, by
default, no busy-waiting (on 2 shared cores spinning threads doubled the latency and starved the
decoder for a ~10% gain on an idle machine).
"""

from __future__ import annotations

import os
from pathlib import Path

from affectlens.errors import AffectlensError


def create_session(model: bytes | str | Path, source: str | Path, num_threads: int | None = None,
                   spinning: bool = False):
    """An ``onnxruntime.InferenceSession`` on the CPU for ``model`` (file path or serialised bytes).

    ``source`` names the model in the one-line error raised when ONNX Runtime cannot load it.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = int(num_threads or min(4, os.cpu_count() or 1))
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    options.log_severity_level = 3
    payload = str(model) if isinstance(model, Path) else model
    try:
        return ort.InferenceSession(payload, sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors for bad files
        text = str(exc).strip()
        first = text.splitlines()[0] if text else type(exc).__name__
        raise AffectlensError(f"{source}: cannot load ONNX model ({first})") from None
