"""The proposal: one page's DOM boxes to labelled regions and element masks.

The path through it: `boxes` (boxes.json as records) -> `tree` (the block tree) ->
`segment` (top-level segments, with `cluster` for loose objects and `split` for the learned
open-or-keep decision) -> `regions` (each segment labelled by `classify`) and `masks`
(element masks), written by `preannotate` as `preannotation.json`. `labelset` is the label
set from the config. Imports only `catalog` and the shared `segmentation` package.

What other code may use is named below; everything else is internal.
"""

from .boxes import PageBoxes, load_boxes
from .labelset import LabelSet, label_set
from .preannotate import VERSION, load_gray, preannotate, preannotate_page
from .segment import Opener
from .split import learned_opener
from .tree import build_tree

__all__ = [
    "VERSION",
    "LabelSet",
    "Opener",
    "PageBoxes",
    "build_tree",
    "label_set",
    "learned_opener",
    "load_boxes",
    "load_gray",
    "preannotate",
    "preannotate_page",
]
