"""Pre-annotations scored against human ground truth, next to two baselines.

`evaluation` runs a whole evaluation (Kreuzer corpus or pulled annotations) and writes its
report; `kreuzer` reads Kreuzer-format truth; `baselines` are the whole page and the naive
DOM split; `overlay` draws truth beside proposal. The scorer itself is shared
(`segmentation.metrics`). The proposal is used only through `annotate.propose`'s public API,
as any other consumer would.
"""
