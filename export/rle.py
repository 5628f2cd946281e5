"""COCO's compressed RLE text of masks given as column groups, without expanding them.

A mask here is a set of groups: rows `row0:row1` repeated over `ncols` identical
consecutive columns from `col` (a text line, a box). Its COCO RLE lists, column after
column, the lengths of alternating background and foreground runs; compressed
(pycocotools' rleToString), each count from the fourth on is written as its difference
from the count two before, in 5-bit chunks. Every column of a group after its first has
the same counts (the gap wraps from the bottom of the column before), so from the
group's third column on the differences repeat too: only the first three columns of a
group are encoded, and the third one's text is copied for the others. That keeps the
work to the number of groups, not of columns, which is what made text masks slow.
"""

from __future__ import annotations

import numpy as np


def groups_rle(mask: np.ndarray, col: np.ndarray, ncols: np.ndarray, row0: np.ndarray,
               row1: np.ndarray, n_masks: int, height: int, width: int) -> list[str]:
    """COCO compressed RLE counts (as pycocotools writes them) of masks 0..n_masks-1 of
    height x width, each given as the union of its group runs.

    Run i covers rows row0[i]:row1[i] of columns col[i]:col[i] + ncols[i] of mask
    mask[i]. Runs are sorted by mask, column, then row; the runs of a mask that start at
    one column share its ncols, groups of one mask share no column, and every mask has a
    run.
    """
    if not len(mask):
        return [""] * n_masks
    mask, col, ncols, row0, row1 = (np.asarray(a, np.int64) for a in (mask, col, ncols, row0,
                                                                        row1))
    s, e, ext, rep, colid, lab = _written_runs(mask, col, ncols, row0, row1, height)
    # Runs that go on from the bottom of one column to the top of the next are one run.
    new = np.r_[True, (lab[1:] != lab[:-1]) | (s[1:] != ext[:-1])]
    if not new.all():  # only in groups written column by column (rep 1)
        last = np.r_[new[1:], True]
        s, e, ext, rep, colid, lab = s[new], e[last], ext[last], rep[new], colid[new], lab[new]
    first = np.r_[True, lab[1:] != lab[:-1]]
    is_last = np.r_[first[1:], True]
    # Counts: per run its gap and length, per mask a tail of background after it.
    n_runs = len(s)
    at = 2 * np.arange(n_runs) + np.cumsum(first) - 1
    counts = np.zeros(2 * n_runs + int(first.sum()), np.int64)
    counts[at] = s - np.where(first, 0, np.r_[0, ext[:-1]])
    counts[at + 1] = e - s
    tail_at = at[is_last] + 2
    counts[tail_at] = height * width - ext[is_last]
    key = np.full(len(counts), -1, np.int64)  # which written column a count repeats with
    key[at] = key[at + 1] = np.where(rep > 1, colid, -1)
    times = np.ones(len(counts), np.int64)
    times[at] = times[at + 1] = rep
    keep = np.ones(len(counts), bool)
    keep[tail_at[counts[tail_at] == 0]] = False  # pycocotools omits a trailing zero count
    counts, key, times = counts[keep], key[keep], times[keep]
    # Index of each mask's first count, less the zero tails dropped before it.
    mask_first = (at - np.cumsum(~keep)[at])[first]
    text, char_at = _text(counts, mask_first)
    text, char_at = _repeat(text, char_at, key, times)
    bounds = np.r_[char_at[mask_first], len(text)].tolist()
    data = text.tobytes()
    return [data[bounds[i] : bounds[i + 1]].decode("ascii") for i in range(n_masks)]


def _written_runs(mask: np.ndarray, col: np.ndarray, ncols: np.ndarray, row0: np.ndarray,
                  row1: np.ndarray, height: int) -> tuple[np.ndarray, ...]:
    """The runs of the columns that are written: a group's first three, or all of them
    where a run joins across columns (the repetition would not hold).

    Per run: start and end in the column-major image (s, e), the end to count the next
    gap from (ext: past the columns the last written one stands for), how many columns
    its column stands for (rep), an id of its written column, and its mask.
    """
    n = len(mask)
    g_first = np.flatnonzero(np.r_[True, (mask[1:] != mask[:-1]) | (col[1:] != col[:-1])])
    g_last = np.r_[g_first[1:], n] - 1
    k, length = g_last - g_first + 1, ncols[g_first]
    g_mask, g_col = mask[g_first], col[g_first]
    low, top = row1[g_last] == height, row0[g_first] == 0
    joins_next = low & np.r_[(g_mask[1:] == g_mask[:-1])
                             & (g_col[1:] == g_col[:-1] + length[:-1]) & top[1:], False]
    m = np.where((low & top) | joins_next, length, np.minimum(length, 3))
    g_rep = length - m + 1  # columns the group's last written column stands for
    per = m * k
    g = np.repeat(np.arange(len(g_first)), per)
    within = np.arange(int(per.sum())) - np.repeat(np.cumsum(per) - per, per)
    t, j = within // k[g], within % k[g]  # written column of the group, run in it
    node = g_first[g] + j
    c = col[node] + t
    s, e = c * height + row0[node], c * height + row1[node]
    in_last = t == m[g] - 1
    rep = np.where(in_last, g_rep[g], 1)
    ext = e + np.where(in_last & (j == k[g] - 1), (rep - 1) * height, 0)
    colid = (np.cumsum(m) - m)[g] + t
    return s, e, ext, rep, colid, mask[node]


def _text(counts: np.ndarray, mask_first: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """pycocotools' characters of counts (masks concatenated; mask_first: index of each
    mask's first count), and where each count's characters start."""
    n = len(counts)
    wide = int(counts.max()) >= 2**31
    counts = counts.astype(np.int64 if wide else np.int32)  # narrow: half the memory traffic
    # Each count after a mask's third is coded as the change from the one two before.
    head = np.zeros(n, bool)
    third = mask_first + 2
    head[mask_first], head[mask_first + 1], head[third[third < n]] = True, True, True
    delta = counts.copy()
    delta[2:] -= counts[:-2]
    x = np.where(head, counts, delta)
    # Each value is written in five-bit chunks, low first, until the rest is its sign
    # extension: k chunks hold -2**(5k-1) <= x < 2**(5k-1).
    magnitude = x ^ (x >> (8 * x.itemsize - 1))  # x for x >= 0, -x - 1 below
    bits = np.frexp(magnitude.astype(np.float64))[1]  # bit length; exact below 2**53
    n_chars = np.maximum(1, (bits + 5) // 5)
    ends = np.cumsum(n_chars)
    at = ends - n_chars
    text = np.empty(int(ends[-1]), np.uint8)
    # Most values (deltas of runs that repeat) need one chunk: later chunks only for the few.
    text[at] = (x & 0x1F) + np.where(n_chars > 1, 32 + 48, 48)
    which = np.flatnonzero(n_chars > 1)
    k = 1
    while len(which):
        more = n_chars[which]
        text[at[which] + k] = ((x[which] >> (5 * k)) & 0x1F) + np.where(more > k + 1, 80, 48)
        k += 1
        which = which[more > k]
    return text, at


def _repeat(text: np.ndarray, at: np.ndarray, key: np.ndarray,
            times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The text with each repeated column's characters written `times` times, and where
    each count's (first) characters start in it. key: the column a count repeats with
    (-1: written once); a column's counts are consecutive."""
    seg = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    seg_rep = times[seg]
    if (seg_rep == 1).all():
        return text, at
    seg_at = at[seg]
    seg_len = np.r_[seg_at[1:], len(text)] - seg_at
    # One piece per copy of a segment. The source position of each output character is
    # one past the one before, except where a piece starts: a running sum of those steps
    # (np.repeat over many short pieces is several times slower). Positions stay intp:
    # numpy converts any other index array before it gathers.
    piece = np.repeat(np.arange(len(seg)), seg_rep)
    piece_at, piece_len = seg_at[piece], seg_len[piece]
    piece_out = np.cumsum(piece_len) - piece_len
    step = np.ones(int(piece_out[-1] + piece_len[-1]), np.intp)
    step[0] = piece_at[0]
    step[piece_out[1:]] = piece_at[1:] - (piece_at[:-1] + piece_len[:-1] - 1)
    src = np.cumsum(step)
    first_piece = np.cumsum(seg_rep) - seg_rep
    shift = np.repeat(piece_out[first_piece] - seg_at, np.diff(np.r_[seg, len(at)]))
    return text[src], at + shift


def decode_counts(texts: list[str | bytes]) -> tuple[np.ndarray, np.ndarray]:
    """The counts of compressed RLE texts as pycocotools reads them (rleFrString), all
    texts at once: the counts concatenated, and the index of each text's first count
    (len(texts) + 1 entries). ValueError for a text that is not a whole number list."""
    raw = [t.encode("ascii") if isinstance(t, str) else bytes(t) for t in texts]
    lens = np.array([len(t) for t in raw], np.int64)
    chars = np.frombuffer(b"".join(raw), np.uint8).astype(np.int64) - 48
    if ((chars < 0) | (chars > 63)).any():
        raise ValueError("an RLE text has a character outside pycocotools' alphabet")
    last = (chars & 0x20) == 0  # the last chunk of a value has no continuation bit
    text_end = np.cumsum(lens)
    if not last[text_end[lens > 0] - 1].all():
        raise ValueError("an RLE text ends inside a number")
    value_end = np.flatnonzero(last)
    value_start = np.r_[0, value_end[:-1] + 1].astype(np.int64)
    n_chunks = value_end - value_start + 1
    if len(n_chunks) and n_chunks.max() > 12:
        raise ValueError("an RLE text holds a number beyond 60 bits")
    k = np.arange(len(chars)) - np.repeat(value_start, n_chunks)
    x = np.add.reduceat((chars & 0x1F) << (5 * k), value_start) if len(chars) else chars
    negative = (chars[value_end] & 0x10) != 0
    x = np.where(negative, x - (np.int64(1) << (5 * n_chunks)), x)
    # Values per text: those ending inside it.
    first = np.searchsorted(value_end, np.r_[0, text_end[:-1]]).astype(np.int64)
    bounds = np.r_[first, len(x)]
    per = np.diff(bounds)
    m = np.arange(len(x)) - np.repeat(first, per)
    # From the fourth count on, each is written as the change from the one two before:
    # running sums along each text's chain of odd counts, and of even counts from the
    # third. A chain steps by two, so it lies in one of the two interleaved halves of the
    # values; each half is summed once and restarted where a chain (or the first count,
    # a chain of its own) begins.
    counts = np.empty_like(x)
    restart = m <= 2
    for half in (0, 1):
        xs, rs = x[half::2], restart[half::2]
        sums = np.cumsum(xs)
        last_head = np.maximum.accumulate(np.where(rs, np.arange(len(xs)), 0))
        counts[half::2] = sums - (sums - xs)[last_head]
    return counts, bounds


def foreground_runs(counts: np.ndarray, bounds: np.ndarray,
                    size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(start, end, text) of each foreground run, as column-major pixel indices, of RLE
    counts from `decode_counts` over `size` pixels; ValueError when a text's counts are
    negative or do not add up to `size`."""
    if (counts < 0).any():
        raise ValueError("an RLE count is negative")
    per = np.diff(bounds)
    text = np.repeat(np.arange(len(per)), per)
    ends = np.cumsum(counts)
    before = np.r_[0, ends[bounds[1:-1] - 1]] if len(per) else np.zeros(0, np.int64)
    ends -= np.repeat(before, per)
    totals = np.where(per > 0, ends[np.maximum(bounds[1:] - 1, 0)] if len(ends) else 0, 0)
    if (totals != size).any():
        bad = int(np.flatnonzero(totals != size)[0])
        raise ValueError(f"RLE counts add up to {int(totals[bad])} pixels, not {size}")
    m = np.arange(len(counts)) - np.repeat(bounds[:-1], per)
    fg = (m % 2 == 1) & (counts > 0)
    return (ends - counts)[fg], ends[fg], text[fg]
