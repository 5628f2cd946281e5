"""The package layout the README's map promises: stages never import each other, and inside
annotate/ the studio never imports the proposal, and evaluation uses only its public API."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STAGES = {"scraper", "dedupe", "annotate", "export", "model"}
SHARED = {"catalog", "segmentation"}


def _imports(path: Path) -> list[str]:
    """Absolute module names a file imports, relative imports resolved against its package."""
    package = list(path.relative_to(ROOT).with_suffix("").parts[:-1])
    names = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            names += [module] if node.module else [f"{module}.{a.name}" for a in node.names]
    return names


def _files(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def test_no_stage_imports_another_and_shared_packages_import_no_stage():
    crossings = []
    for package in STAGES | SHARED:
        for path in _files(package):
            for name in _imports(path):
                top = name.split(".")[0]
                if top in STAGES and top != package:
                    crossings.append(f"{path.relative_to(ROOT)} imports {name}")
    assert crossings == []


def test_studio_never_imports_the_proposal_or_its_evaluation():
    found = [
        f"{p.relative_to(ROOT)} imports {n}"
        for p in _files("annotate/studio")
        for n in _imports(p)
        if n.startswith(("annotate.propose", "annotate.evaluate", "annotate.learn"))
    ]
    assert found == []


def test_evaluation_uses_the_proposal_only_through_its_package():
    found = [
        f"{p.relative_to(ROOT)} imports {n}"
        for p in _files("annotate/evaluate")
        for n in _imports(p)
        if n.startswith("annotate.propose.") and n.split(".")[2] not in _public_names()
    ]
    assert found == []


def _public_names() -> set[str]:
    import annotate.propose

    return set(annotate.propose.__all__)


def test_the_import_reader_resolves_relative_imports():
    # The checks above are only as good as this reader: a relative import two levels up
    # from annotate/evaluate/ must come out as annotate.propose.
    names = _imports(ROOT / "annotate" / "evaluate" / "baselines.py")
    assert "annotate.propose" in names
    assert "segmentation.geometry" in names
