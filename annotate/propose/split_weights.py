"""Weights of the open-or-keep decision (split.py), written by
`python -m annotate.learn.train_split` from the dev pages of the Kreuzer corpus (38 pages,
173 decisions). Do not edit by hand: train again."""

# feature: (mean, scale, weight); a feature counts as weight * (x - mean) / scale.
WEIGHTS = {
    "rule": (0.098266, 0.297674, 0.496725),
    "height_share": (0.298399, 0.330193, -0.322604),
    "width_share": (0.878203, 0.346723, -0.053085),
    "area_share": (0.424482, 0.275314, 1.717328),
    "touches_top": (0.236994, 0.425239, -0.012526),
    "touches_bottom": (0.242775, 0.42876, 0.334584),
    "kids": (0.944881, 0.569212, 0.382373),
    "has_band": (0.421965, 0.493873, -0.386113),
    "largest_kid": (0.382784, 0.286366, -0.142435),
    "columns": (0.221167, 0.392275, -0.333955),
    "kid_cover": (0.543608, 0.351065, -0.068918),
    "text_density": (3.215566, 2.737121, 0.031188),
    "link_share": (0.563882, 0.362997, -0.143988),
    "named": (0.618497, 0.485756, 0.072276),
    "depth": (1.433526, 0.762129, 0.873823),
}
BIAS = -3.332313
THRESHOLD = 0.5  # P(open) from which a container is opened

MODEL = {
    "features": list(WEIGHTS),
    "mean": [v[0] for v in WEIGHTS.values()],
    "scale": [v[1] for v in WEIGHTS.values()],
    "weights": [v[2] for v in WEIGHTS.values()],
    "bias": BIAS,
    "threshold": THRESHOLD,
}
