"""Fitting the proposal's decisions to human truth.

`convention` and `cli` (`python -m annotate learn`) learn a team's convention from the pages
it corrected: the granularity, whether headers hold their menus, and its names for the
parts; `train_split` learns propose's open-or-keep decision from the Kreuzer dev pages and
writes `propose/split_weights.py`. Unlike `evaluate`, this package reaches into `propose`'s
modules: what it fits are the proposal's internals.
"""
