"""Fitting the proposal's decisions to human truth.

`train_split` learns propose's open-or-keep decision from the Kreuzer dev pages and writes
`propose/split_weights.py`. Unlike `evaluate`, it reaches into `propose`'s modules: the
features it learns from are the proposal's internals.
"""
