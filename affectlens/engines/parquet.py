"""The collection's Parquet file: every face of every input in one table (``predictions.parquet``).

Why Parquet beside JSONL/CSV: a collection of thousands of videos is analysed in pandas, Polars,
DuckDB or Spark, which read a typed, columnar file in a fraction of the time and memory of JSON,
and can read only the columns a question needs. The file is built from the same per-input records
as ``predictions.jsonl`` (one code path, so the two cannot disagree), in the same order.

Schema: one row per face; a photo or frame with no face has one row whose face columns are null,
so the rows cover every record (row count = sum over records of max(1, faces)).

=================  ========  ======================================================================
column             type      meaning
=================  ========  ======================================================================
input              string    the input file, as the records name it (``file`` in JSONL/CSV)
input_sha256       string    sha256 of the input file's bytes (the done-ledger's content key)
frame              int64     frame index in the video; null for a photo
time               float64   seconds from the video's start; null for a photo
width, height      int32     the photo's or frame's size in pixels
face_id            int32     track id in a video, left-to-right index in a photo; null: no face
x, y, w, h         float64   the face box in pixels: top-left corner, width and height
score              float64   the face detector's confidence
label              string    the most probable emotion
p_<class>          float64   the probability of each class of the model, in the model's order
valence, arousal   float64   in [-1, 1]; only for models that predict them
=================  ========  ======================================================================

Values are those of the JSONL records (rounded the same way). Needs pyarrow (``affectlens[batch]``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from affectlens.utils.outputs import atomic_path

PARQUET = "predictions.parquet"
#: rows per row group (bounded memory for long videos; readers skip whole groups)
ROW_GROUP = 65_536


def schema(class_names: Sequence[str], valence_arousal: bool) -> Any:
    """The ``pyarrow.Schema`` of the module docstring for a model with these classes."""
    import pyarrow as pa

    columns = [("input", pa.string()), ("input_sha256", pa.string()), ("frame", pa.int64()),
               ("time", pa.float64()), ("width", pa.int32()), ("height", pa.int32()), ("face_id", pa.int32()),
               ("x", pa.float64()), ("y", pa.float64()), ("w", pa.float64()), ("h", pa.float64()),
               ("score", pa.float64()), ("label", pa.string())]
    columns += [(f"p_{name}", pa.float64()) for name in class_names]
    if valence_arousal:
        columns += [("valence", pa.float64()), ("arousal", pa.float64())]
    return pa.schema(columns)


def rows(records: Iterable[dict[str, Any]], sha256: str, class_names: Sequence[str],
         valence_arousal: bool) -> Iterable[dict[str, Any]]:
    """One row per face of each JSONL record (one null-face row for a record without faces)."""
    for record in records:
        head = {"input": record["file"], "input_sha256": sha256, "frame": record["frame"], "time": record["time"],
                "width": record["width"], "height": record["height"]}
        if not record["faces"]:
            yield head
        for face in record["faces"]:
            x1, y1, x2, y2 = face["box"]
            row = {**head, "face_id": face["face_id"], "x": x1, "y": y1, "w": round(x2 - x1, 2),
                   "h": round(y2 - y1, 2), "score": face["score"], "label": face["label"]}
            row.update({f"p_{name}": face["probabilities"][name] for name in class_names})
            if valence_arousal:
                row["valence"], row["arousal"] = face.get("valence"), face.get("arousal")
            yield row


def write_parquet(parts: Sequence[tuple[Path, str]], out: Path, class_names: Sequence[str],
                  valence_arousal: bool) -> int:
    """``out`` from the JSONL ``parts`` (each with its input's sha256) that exist; returns the rows written.

    Streams: at most :data:`ROW_GROUP` rows are held at a time. No part with a record: no file.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    table_schema = schema(class_names, valence_arousal)
    present = [(path, sha) for path, sha in parts if path.is_file()]
    if not present:
        return 0
    total = 0
    with atomic_path(out) as partial:
        with pq.ParquetWriter(partial, table_schema) as writer:
            pending: list[dict[str, Any]] = []
            for path, sha in present:
                with path.open(encoding="utf-8") as handle:
                    for row in rows(map(json.loads, handle), sha, class_names, valence_arousal):
                        pending.append(row)
                        if len(pending) >= ROW_GROUP:
                            writer.write_table(pa.Table.from_pylist(pending, schema=table_schema))
                            total += len(pending)
                            pending = []
            if pending:
                writer.write_table(pa.Table.from_pylist(pending, schema=table_schema))
                total += len(pending)
    return total
