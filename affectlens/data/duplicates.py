"""Exact and near-duplicate images: the copies that make validation scores lie.

Two images count as *exact* duplicates when their pixels (as the model sees them: after the
loader's resize and channel conversion) are byte-identical; a hash of the raw pixel bytes finds
them in one pass. *Near* duplicates are the same picture re-encoded, re-cropped slightly,
brightened or watermarked: their 64-bit perceptual hashes (DCT ``phash`` of the ``imagehash``
library) differ in at most a few bits.

Searching all pairs of 64-bit hashes is cheap enough with NumPy for tens of thousands of images
(XOR plus a bit count over packed ``uint64`` in blocks: FER2013's 35,887 images take about a
second); above that, a multi-index search (split the hash into ``threshold + 1`` segments: by the
pigeonhole principle two hashes within the threshold agree exactly on at least one segment)
only compares hashes that share a segment.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np

#: Hamming distance (of 64 bits) up to which two perceptual hashes are called near-duplicates.
#: Measured on FER2013 (48x48 faces): pairs at 0-4 bits are all the same photo (re-encoded, shifted,
#: watermarked); at 6 bits about one pair in five is a different photo, at 8 most are.
NEAR_THRESHOLD = 4
#: most near-duplicate pairs returned (the frames of a static video can pair up by the million)
MAX_PAIRS = 2_000_000
#: above this many distinct hashes the all-pairs search gives way to the multi-index search
BRUTE_FORCE_LIMIT = 60_000
#: rows of the all-pairs search compared per block (memory: rows x N x 8 bytes)
_BLOCK_ROWS = 256


def pixel_digest(image: np.ndarray) -> bytes:
    """A 16-byte digest of an image's shape and raw pixel bytes (equal digest = identical pixels)."""
    image = np.ascontiguousarray(image)
    h = hashlib.blake2b(digest_size=16)
    h.update(str(image.shape).encode())
    h.update(image.tobytes())
    return h.digest()


def phash64(image: np.ndarray) -> np.uint64:
    """The ``imagehash.phash`` of a uint8 ``(H, W[, C])`` image, packed into one ``uint64``."""
    import imagehash
    from PIL import Image

    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    bits = imagehash.phash(Image.fromarray(np.ascontiguousarray(image))).hash.reshape(-1)
    return pack_bits(bits[None, :])[0]


def pack_bits(bits: np.ndarray) -> np.ndarray:
    """``(N, 64)`` booleans to ``(N,)`` uint64, first bit most significant (as imagehash's hex)."""
    packed = np.packbits(np.asarray(bits, dtype=bool), axis=1)
    return packed.view(">u8").reshape(-1).astype(np.uint64)


def hash_hex(value: np.uint64 | int) -> str:
    """The 16-digit hex string imagehash prints for the same hash."""
    return f"{int(value):016x}"


def exact_groups(digests: Iterable[bytes]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Group identical digests.

    Returns:
        ``rep`` (per sample: index of the first sample with the same pixels) and the list of
        groups with at least two members (sorted member indices, groups in order of first member).
    """
    first: dict[bytes, int] = {}
    rep = []
    for i, digest in enumerate(digests):
        rep.append(first.setdefault(digest, i))
    rep_arr = np.asarray(rep, dtype=np.int64)
    order = np.argsort(rep_arr, kind="stable")
    sorted_rep = rep_arr[order]
    starts = np.flatnonzero(np.r_[True, sorted_rep[1:] != sorted_rep[:-1]])
    sizes = np.diff(np.r_[starts, len(sorted_rep)])
    groups = [order[s:s + n] for s, n in zip(starts, sizes, strict=True) if n > 1]
    return rep_arr, groups


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bitwise Hamming distance between uint64 hashes (broadcasting)."""
    return np.bitwise_count(np.bitwise_xor(a, b)).astype(np.int64)


def near_pairs(hashes: np.ndarray, threshold: int = NEAR_THRESHOLD,
               max_pairs: int | None = MAX_PAIRS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All pairs ``i < j`` with Hamming distance ``<= threshold`` between 64-bit hashes.

    Identical hashes are collapsed first (one comparison per distinct hash), so a cluster of
    hundreds of copies costs nothing extra in the search and is expanded only at the end.
    At most ``max_pairs`` pairs are returned: the frames of one video can be near-identical by
    the million. A result of exactly ``max_pairs`` pairs means the search stopped early and the
    pairs are an incomplete sample.

    Returns:
        ``(i, j, distance)`` int64 arrays, sorted by distance then ``i`` then ``j``.
    """
    hashes = np.asarray(hashes, dtype=np.uint64)
    budget = max_pairs if max_pairs is not None else np.iinfo(np.int64).max
    empty = np.empty(0, np.int64)
    if len(hashes) < 2 or budget <= 0:
        return empty, empty, empty
    unique, inverse = np.unique(hashes, return_inverse=True)
    if len(unique) <= BRUTE_FORCE_LIMIT:
        ua, ub = _pairs_brute_force(unique, threshold, budget)
    else:
        ua, ub = _pairs_multi_index(unique, threshold, budget)
    counts = np.bincount(inverse, minlength=len(unique))
    order = np.argsort(inverse, kind="stable")
    bounds = np.r_[0, np.cumsum(counts)]
    parts_i, parts_j, parts_d = [], [], []
    found = 0
    # identical hashes: every pair inside a group, distance 0
    for k in np.flatnonzero(counts > 1).tolist():
        if found >= budget:
            break
        group = order[bounds[k]:bounds[k + 1]]
        n = len(group)
        if n * (n - 1) // 2 <= budget - found:
            gi, gj = np.triu_indices(n, k=1)
        else:  # a huge cluster: only as many rows of its pairs as the budget allows
            rows, taken = [], 0
            for r in range(n - 1):
                rows.append(r)
                taken += n - 1 - r
                if taken >= budget - found:
                    break
            gi = np.concatenate([np.full(n - 1 - r, r) for r in rows])
            gj = np.concatenate([np.arange(r + 1, n) for r in rows])
        parts_i.append(group[gi])
        parts_j.append(group[gj])
        parts_d.append(np.zeros(len(gi), np.int64))
        found += len(gi)
    # distinct hashes within the threshold: every member of one against every member of the other
    if len(ua) and found < budget:
        dist = hamming(unique[ua], unique[ub])
        single = (counts[ua] == 1) & (counts[ub] == 1)
        first = order[bounds[:-1]]
        si, sj = first[ua[single]], first[ub[single]]
        parts_i.append(np.minimum(si, sj))
        parts_j.append(np.maximum(si, sj))
        parts_d.append(dist[single])
        found += len(si)
        for a, b, d in zip(ua[~single].tolist(), ub[~single].tolist(), dist[~single].tolist(), strict=True):
            if found >= budget:
                break
            ma, mb = order[bounds[a]:bounds[a + 1]], order[bounds[b]:bounds[b + 1]]
            gi = np.repeat(ma, len(mb))
            gj = np.tile(mb, len(ma))
            parts_i.append(np.minimum(gi, gj))
            parts_j.append(np.maximum(gi, gj))
            parts_d.append(np.full(len(gi), d, np.int64))
            found += len(gi)
    if not parts_i:
        return empty, empty, empty
    i, j, d = np.concatenate(parts_i), np.concatenate(parts_j), np.concatenate(parts_d)
    order = np.lexsort((j, i, d))[:budget]
    return i[order], j[order], d[order]


def _pairs_brute_force(unique: np.ndarray, threshold: int, budget: int) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of distinct hashes within ``threshold``: XOR + bit count of each block against the rest."""
    found_a, found_b = [], []
    total = 0
    n = len(unique)
    for start in range(0, n - 1, _BLOCK_ROWS):
        rows = unique[start:start + _BLOCK_ROWS]
        cols = unique[start + 1:]
        dist = np.bitwise_count(np.bitwise_xor(rows[:, None], cols[None, :]))
        r, c = np.nonzero(dist <= threshold)
        a = start + r
        b = start + 1 + c
        keep = b > a
        found_a.append(a[keep])
        found_b.append(b[keep])
        total += int(keep.sum())
        if total >= budget:
            break
    if not found_a:
        empty = np.empty(0, np.int64)
        return empty, empty
    return np.concatenate(found_a).astype(np.int64), np.concatenate(found_b).astype(np.int64)


def _pairs_multi_index(unique: np.ndarray, threshold: int, budget: int) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of distinct hashes within ``threshold`` via exact matches on ``threshold + 1`` segments."""
    segments = threshold + 1
    edges = np.linspace(0, 64, segments + 1).round().astype(int)
    candidates: list[np.ndarray] = []
    total = 0
    n = len(unique)
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        width = int(hi - lo)
        key = (unique >> np.uint64(64 - hi)) & np.uint64((1 << width) - 1)
        order = np.argsort(key, kind="stable")
        sorted_key = key[order]
        starts = np.flatnonzero(np.r_[True, sorted_key[1:] != sorted_key[:-1]])
        sizes = np.diff(np.r_[starts, n])
        for s, size in zip(starts[sizes > 1].tolist(), sizes[sizes > 1].tolist(), strict=True):
            bucket = np.sort(order[s:s + size])
            # compare the bucket block-wise so a crowded bucket never builds one huge matrix
            for b0 in range(0, size, _BLOCK_ROWS):
                rows = bucket[b0:b0 + _BLOCK_ROWS]
                cols = bucket[b0 + 1:]
                dist = np.bitwise_count(np.bitwise_xor(unique[rows][:, None], unique[cols][None, :]))
                r, c = np.nonzero(dist <= threshold)
                a, b = rows[r], cols[c]
                keep = b > a
                if keep.any():
                    candidates.append(a[keep].astype(np.int64) * n + b[keep].astype(np.int64))
                    total += int(keep.sum())
            if total >= 2 * budget:  # duplicates across segments are removed below
                break
        if total >= 2 * budget:
            break
    if not candidates:
        empty = np.empty(0, np.int64)
        return empty, empty
    codes = np.unique(np.concatenate(candidates))
    return codes // n, codes % n
