"""Masks as the two formats clients read: COCO RLE (pycocotools) for the JSON API and the
page, and Label Studio's brush RLE for the ML backend."""

from __future__ import annotations

import numpy as np
from pycocotools import mask as coco_mask


def coco_rle(mask: np.ndarray) -> dict:
    """{"size": [h, w], "counts": str} of a 0/non-zero mask."""
    rle = coco_mask.encode(np.asfortranarray((mask > 0).astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


# Label Studio's brush RLE (thi-ng rle-pack) over the RGBA bytes of the mask: a 32-bit
# value count, a 5-bit word size - 1, four 4-bit field sizes - 1, then records. Only run
# records are written (flag 1, a 2-bit field-size index, count - 1, one 8-bit word): a
# mask is long runs of 0 and 255, and every decoder reads run records.
_SIZES = np.array([3, 4, 8, 16])
_MAX_RUN = 1 << 16


def _bits(values: np.ndarray, widths: np.ndarray) -> np.ndarray:
    total = int(widths.sum())
    starts = np.cumsum(widths) - widths
    owner = np.repeat(np.arange(values.size), widths)
    shift = widths[owner] - 1 - (np.arange(total) - starts[owner])
    return ((values[owner] >> shift) & 1).astype(np.uint8)


def brush_rle(mask: np.ndarray) -> list[int]:
    """Label Studio's `rle` of a mask (non-zero: painted), as `mask2rle` of its SDK
    decodes and the labelling UI draws it."""
    flat = np.where(mask.ravel() > 0, 255, 0).astype(np.int64)
    if flat.size == 0:
        raise ValueError("cannot encode an empty mask")
    change = np.flatnonzero(flat[1:] != flat[:-1])
    ends = np.append(change, flat.size - 1)
    lengths = np.diff(np.append(-1, ends)) * 4  # four RGBA bytes per pixel
    values = flat[ends]
    pieces = (lengths + _MAX_RUN - 1) // _MAX_RUN
    values = np.repeat(values, pieces)
    full = np.repeat(lengths, pieces)
    last = np.cumsum(pieces) - 1
    full[:] = _MAX_RUN
    full[last] = lengths - (pieces - 1) * _MAX_RUN
    counts = full - 1
    index = np.searchsorted(1 << _SIZES, counts + 1)  # smallest field that holds count-1
    index = np.minimum(index, 3)
    n = counts.size
    fields = np.stack([np.ones(n, np.int64), index, counts, values], axis=1).ravel()
    widths = np.stack([np.ones(n, np.int64), np.full(n, 2), _SIZES[index],
                       np.full(n, 8)], axis=1).ravel()
    head_vals = np.array([flat.size * 4, 7, *(_SIZES - 1)], np.int64)
    head_w = np.array([32, 5, 4, 4, 4, 4], np.int64)
    bits = _bits(np.concatenate([head_vals, fields]), np.concatenate([head_w, widths]))
    return np.packbits(bits).astype(int).tolist()


def decode_brush_rle(rle: list[int], width: int, height: int) -> np.ndarray:
    """A brush result's mask (bool, height x width): painted where its alpha is not 0.
    Reads run and literal records, as the labelling UI writes both."""
    bits = np.unpackbits(np.asarray(rle, np.uint8))
    pos = 0

    def take(n: int) -> int:
        nonlocal pos
        v = 0
        for b in bits[pos:pos + n]:
            v = (v << 1) | int(b)
        pos += n
        return v

    total = take(32)
    word = take(5) + 1
    sizes = [take(4) + 1 for _ in range(4)]
    out = np.zeros(total, np.uint8)
    i = 0
    while i < total:
        flag = take(1)
        count = take(sizes[take(2)]) + 1
        if flag:
            out[i:i + count] = take(word)
        else:
            for k in range(count):
                out[i + k] = take(word)
        i += count
    if total != width * height * 4:
        raise ValueError(f"a brush mask of {total} values does not fit a {width}x{height} image")
    return out.reshape(height, width, 4)[:, :, 3] > 0
