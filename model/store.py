"""A model version on disk: `models/mNNNN/` with model.safetensors (no pickle), model.json
(the card: classes, input scale, the release and its SHA256SUMS digest, config, val figures)
and curves.png. A version appears whole: written under a temporary name, then renamed."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .infer import PagePrediction, Windowing, predict_page
from .network import NetConfig, Normalise, SegNet
from .pictures import PictureBoxes

MODEL_SCHEMA = 1
VERSION_RE = re.compile(r"^m\d{4,}$")
WEIGHTS = "model.safetensors"
CARD = "model.json"


class ModelError(ValueError):
    """A model directory that cannot be used; the message says what to do."""


def versions(models_dir: Path) -> list[str]:
    if not models_dir.is_dir():
        return []
    found = [p.name for p in models_dir.iterdir() if p.is_dir() and VERSION_RE.match(p.name)]
    return sorted(found, key=lambda v: int(v[1:]))


def next_version(models_dir: Path) -> str:
    have = versions(models_dir)
    return f"m{int(have[-1][1:]) + 1:04d}" if have else "m0001"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale_tmp(models_dir: Path) -> list[Path]:
    """Remove the folders that publishes killed mid-write left (`.tmp-<pid>-*`, their
    process gone); a folder of a publish still running stays. The removed ones."""
    removed = []
    for p in models_dir.glob(".tmp-*-*"):
        pid = p.name.split("-")[1]
        if p.is_dir() and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed


def publish(models_dir: Path, net: SegNet, card: dict, extra: dict[str, bytes],
            before_rename: Callable[[str, str], None] | None = None) -> Path:
    """Write the next version: weights, card (with the weights' digest) and extra files.
    `before_rename` is told (version, weights' sha256) before each rename that may publish
    it, so a caller can record what a kill right after the rename would leave published."""
    models_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_tmp(models_dir)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{os.getpid()}-", dir=models_dir))
    try:
        state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
        save_file(state, str(tmp / WEIGHTS))
        for name, data in extra.items():
            (tmp / name).write_bytes(data)
        while True:
            version = next_version(models_dir)
            card = {**card, "schema": MODEL_SCHEMA, "version": version,
                    "weights_sha256": _sha256(tmp / WEIGHTS)}
            (tmp / CARD).write_text(json.dumps(card, indent=1) + "\n", encoding="utf-8")
            for f in tmp.iterdir():
                os.chmod(f, 0o444)
            os.chmod(tmp, 0o755)
            if before_rename:
                before_rename(version, card["weights_sha256"])
            try:
                os.rename(tmp, models_dir / version)  # fails if another run took the name
                return models_dir / version
            except OSError:
                if not (models_dir / version).exists():
                    raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@dataclass
class LoadedModel:
    path: Path
    card: dict
    net: SegNet
    norm: Normalise

    @property
    def version(self) -> str:
        return self.card.get("version", self.path.name)

    @property
    def working_width(self) -> int:
        return int(self.card["input"]["working_width"])

    @property
    def windowing(self) -> Windowing:
        w = self.card["input"].get("windowing", {})
        return Windowing(**w)

    @property
    def element_offsets(self) -> list[float] | None:
        """Added to the element logits before the argmax; None for a model without them."""
        found = self.card.get("decision", {}).get("element_offsets")
        return None if found is None else [float(v) for v in found]

    @property
    def picture_boxes(self) -> PictureBoxes | None:
        """The settings that cut large image areas back to picture boxes; None for a model
        without them."""
        found = self.card.get("decision", {}).get("picture_boxes")
        if not found:
            return None
        try:
            return PictureBoxes.from_json(found)
        except TypeError as e:
            raise ModelError(f"{self.path / 'model.json'}: decision.picture_boxes {found} is "
                             f"not a picture-box setting ({e}): remove it, or publish the model "
                             "again with `python -m model calibrate`") from None

    def predict(self, rgb: np.ndarray) -> PagePrediction:
        """One page at its own size, as every consumer of the model sees it."""
        boxes = self.picture_boxes
        names = self.element_names
        pictures = None if boxes is None or "image" not in names else (names.index("image"), boxes)
        return predict_page(self.net, self.norm, rgb, self.working_width, self.windowing,
                            self.element_offsets, pictures)

    @property
    def element_names(self) -> list[str]:
        return list(self.card["heads"]["elements"])

    @property
    def region_names(self) -> list[str]:
        return list(self.card["heads"]["regions"])


def load_model(path: str | Path, device: str = "cpu") -> LoadedModel:
    path = Path(path)
    card_path, weights = path / CARD, path / WEIGHTS
    again = "train it again (make train) or copy the whole model directory back"
    if not card_path.is_file():
        raise ModelError(f"{path} is not a model directory (no {CARD}): give a "
                         "models/mNNNN directory written by `python -m model train`")
    try:
        card = json.loads(card_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"{card_path} is damaged ({exc}); {again}") from None
    if not isinstance(card, dict):
        raise ModelError(f"{card_path} is damaged (not a JSON object); {again}")
    if card.get("schema") != MODEL_SCHEMA:
        raise ModelError(f"{card_path} has schema {card.get('schema')!r}, this code reads "
                         f"{MODEL_SCHEMA}: train a new model (make train)")
    if not weights.is_file():
        raise ModelError(f"{weights} is missing; {again}")
    if card.get("weights_sha256") and _sha256(weights) != card["weights_sha256"]:
        raise ModelError(f"{weights} is damaged (its sha256 differs from {CARD}); {again}")
    try:
        net = SegNet(NetConfig.from_json(card["network"]))
        norm = Normalise(**card["input"]["normalise"])
        loaded = LoadedModel(path, card, net, norm)
        # Read now what predict reads later, so a damaged card fails here, in one line.
        if loaded.working_width <= 0:
            raise ValueError("input.working_width must be positive")
        loaded.windowing, loaded.element_names, loaded.region_names, loaded.picture_boxes  # noqa: B018
    except (KeyError, IndexError, TypeError, ValueError, AttributeError, OverflowError,
            RuntimeError) as exc:
        raise ModelError(f"{card_path} is damaged (missing or wrong field: "
                         f"{type(exc).__name__} {exc}); {again}") from None
    try:
        state = load_file(str(weights))
        net.load_state_dict(state)
    except (SafetensorError, RuntimeError, OSError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelError(f"{weights} cannot be loaded ({first}); {again}") from None
    loaded.net = net.to(device).eval()
    return loaded


def resolve_model(arg: str | None, models_dir: Path) -> Path:
    """A model given by path, or by version name (m0003) in the workspace, or the latest."""
    if arg and Path(arg).is_dir():
        return Path(arg)
    if arg and VERSION_RE.match(arg) and (models_dir / arg).is_dir():
        return models_dir / arg
    if arg:
        raise ModelError(f"{arg} is not a model directory: give models/mNNNN (make train "
                         "writes one)")
    have = versions(models_dir)
    if not have:
        raise ModelError(f"{models_dir} holds no model yet: run `make train` first")
    return models_dir / have[-1]


def to_device(device: str) -> torch.device:
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device here; use --device cpu")
    return torch.device(device)
