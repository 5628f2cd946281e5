"""A URL captured and DOM-pre-annotated by the pipeline's own commands, run as
subprocesses into a scratch workspace (the stages never import each other)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .inputs import BadInput

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class CapturedPage:
    page_id: str
    screenshot: Path
    preannotation: Path | None


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    try:
        return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, env=env, text=True,
                              capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BadInput(f"`python -m {' '.join(args[:2])}` took over {timeout:.0f} s", 504
                       ) from None


def _last_line(text: str) -> str:
    lines = [x for x in text.strip().splitlines() if x.strip()]
    return lines[-1].strip() if lines else "no output"


def capture_page(url: str, workspace: Path, timeout: float) -> CapturedPage:
    workspace.mkdir(parents=True, exist_ok=True)
    ws = ["--workspace", str(workspace)]
    done = _run(["scraper", "capture", *ws, url], timeout)
    shots = sorted(workspace.glob("pages/*/screenshot.png"))
    if done.returncode != 0 or not shots:
        raise BadInput(f"the capture of {url} failed: {_last_line(done.stderr + done.stdout)}",
                       422)
    page_dir = shots[0].parent
    pre = _run(["annotate", "preannotate", *ws], timeout)
    pre_path = page_dir / "preannotation.json"
    return CapturedPage(page_dir.name, shots[0],
                        pre_path if pre.returncode == 0 and pre_path.is_file() else None)
