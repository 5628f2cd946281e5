"""Releases: group-aware splits, COCO + PNG masks + manifest, versioning, verification.

`python -m export` writes the next `releases/vNNNN/` of a workspace; `python -m export
verify RELEASE` checks one. Reads the catalog and the page directories; imports no other
stage.
"""
