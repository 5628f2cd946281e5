"""What every part that proposes or scores page segments shares, with no stage behind it.

- `geometry`: rectangles as (x, y, w, h) tuples in image pixels, and the few operations on them;
- `metrics`: the segmentation scorer (one-to-one matching at an IoU threshold, BCubed over
  pixels, IoU per class);
- `pixels`: the pixel-only baseline (edge density, regular text lines) that looks at a
  screenshot without its DOM;
- `kreuzer_truth`: Kreuzer-format truth (rendered blocks) as labelled segments.

Imports nothing of the project's: the annotate and model stages both build on it.
"""
