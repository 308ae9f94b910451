"""Rows of a packed image array on disk, read through a memory map: millions of frames, no JPEG decoding.

A packed store (:mod:`affectlens.data.packed`) keeps every image as one row of a uint8 ``.npy``
array. :class:`PackedImages` is a dataset's view of some of those rows: selecting a split or a
subset composes row numbers instead of copying pixels, and reading a batch copies only its rows
out of the page cache. The file is mapped on first use in each process and the map is left out
when the object is pickled, so DataLoader workers (forked or spawned) and the processes of a
distributed run each map the same file and read it concurrently, sharing the operating system's
page cache instead of holding a copy each.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from affectlens.data.npz import ARCHIVE_ERRORS, archive_error
from affectlens.errors import AffectlensError


class PackedImages:
    """Images ``rows`` of the ``(N, H, W, C)`` uint8 array in ``file``, mapped read-only on demand."""

    def __init__(self, file: str | Path, rows: np.ndarray | None = None) -> None:
        self.file = Path(file)
        self._array: np.ndarray | None = None
        self.rows = np.arange(len(self.array), dtype=np.int64) if rows is None else np.asarray(rows, np.int64)

    @property
    def array(self) -> np.ndarray:
        """The whole memory-mapped array (opened on first use in this process)."""
        if self._array is None:
            try:
                array = np.load(self.file, mmap_mode="r", allow_pickle=False)
            except ARCHIVE_ERRORS as exc:
                raise archive_error(self.file, exc, "packed image array") from None
            if array.dtype != np.uint8 or array.ndim != 4:
                raise AffectlensError(f"{self.file}: expected uint8 images (N, H, W, C), found {array.dtype} "
                                      f"{array.shape}")
            self._array = array
        return self._array

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(H, W, C)`` of every stored image."""
        return tuple(self.array.shape[1:])  # type: ignore[return-value]

    def __len__(self) -> int:
        return len(self.rows)

    def read(self, indices: np.ndarray | list[int]) -> np.ndarray:
        """Images ``indices`` (positions in this view) as one ``(B, H, W, C)`` array, in that order.

        Rows are read in file order (sorted) and put back in the asked order: a shuffled batch
        then reads the file forwards, which is what disks and the page cache's read-ahead like.
        """
        rows = self.rows[np.asarray(indices, dtype=np.int64)]
        order = np.argsort(rows, kind="stable")
        out = np.empty((len(rows), *self.image_shape), np.uint8)
        out[order] = self.array[rows[order]]
        return out

    def take(self, indices: np.ndarray) -> PackedImages:
        """A view of some of these images (a split, a subset), sharing the file and copying no pixels."""
        view = PackedImages.__new__(PackedImages)
        view.file, view._array, view.rows = self.file, self._array, self.rows[np.asarray(indices, np.int64)]
        return view

    @staticmethod
    def join(parts: list[PackedImages]) -> PackedImages:
        """Views of one store joined end to end (e.g. train + validation for fine-tuning)."""
        files = {part.file.resolve() for part in parts}
        if len(files) != 1:
            raise AffectlensError(f"cannot join images of different packed stores ({', '.join(map(str, files))})")
        joined = parts[0].take(np.arange(0))
        joined.rows = np.concatenate([part.rows for part in parts])
        return joined

    def __getstate__(self) -> dict:
        return {"file": self.file, "rows": self.rows}  # each process maps the file itself

    def __setstate__(self, state: dict) -> None:
        self.file, self.rows, self._array = state["file"], state["rows"], None
