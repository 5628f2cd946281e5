"""Deduplication of captured pages: exact copies, near copies and pages of one template.

    python -m dedupe run            hash new pages, match them, update the groups
    python -m dedupe groups --json  duplicate groups, canonical first (--all, --templates)
    python -m dedupe sheet          <workspace>/dedupe/groups.png, each group side by side

Per page (dedupe/hashes.py, dedupe/layout.py): SHA-256 of the decoded pixels and of the
normalised visible text; a 64-bit SimHash of the text's word 3-grams; imagehash's pHash
of the first viewport and of fixed-height bands below it; a coarse layout grid from the
DOM boxes. Pairs (dedupe/match.py): exact pixels or exact text; pages with text are near
duplicates when their SimHashes are close, pages without enough text when their bands
are; same template when their layout grids are alike (never a reason to drop a page).
Search (dedupe/index.py) is multi-index hashing; groups (dedupe/groups.py) are union-find
components with the best capture as canonical. Thresholds are measured by bench/dedupe.py.

Catalog: dup_groups and template_groups (shared), dedupe_hashes, dedupe_edges,
dedupe_decisions, dedupe_runs, dedupe_skipped (dedupe/store.py); nothing is deleted.
"""
