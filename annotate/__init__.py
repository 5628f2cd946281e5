"""The annotate stage: pre-annotations, their evaluation, and the Label Studio round trip.

- `propose/`: DOM boxes to labelled regions and element masks (`preannotation.json`);
- `evaluate/`: proposals scored against human truth (Kreuzer corpus or pulled annotations),
  beside baselines; imports `propose` only through its package (its public API);
- `studio/`: the Label Studio server, client, push, pull and report; reads and writes the
  workspace's files and never imports `propose` or `evaluate`;
- `learn/`: fitting propose's decisions to human truth; the one place that reaches into
  `propose`'s modules.

`python -m annotate preannotate | evaluate | push | pull | report` is the command line.
"""
