"""The model a process serves, loaded once, and the switch to a fine-tuned version."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..store import LoadedModel, load_model


@dataclass
class Served:
    """The loaded model and what /health reports about it and about fine-tuning."""

    model: LoadedModel
    loaded_at: float = field(default_factory=time.time)
    finetune: dict = field(default_factory=lambda: {"state": "idle"})
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def load(cls, path: Path, device: str = "cpu") -> Served:
        return cls(load_model(path, device))

    def current(self) -> LoadedModel:
        with self.lock:
            return self.model

    def switch(self, path: Path) -> LoadedModel:
        new = load_model(path, str(next(self.model.net.parameters()).device))
        with self.lock:
            self.model, self.loaded_at = new, time.time()
        return new

    def note(self, **status) -> None:
        with self.lock:
            self.finetune = {**status, "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}

    def health(self) -> dict:
        with self.lock:
            m = self.model
            return {"status": "UP", "model_class": "SegNet", "model_version": m.version,
                    "model_path": str(m.path),
                    "release": m.card.get("release", {}).get("version"),
                    "learned_from": m.card.get("learned_from"),
                    "loaded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                               time.gmtime(self.loaded_at)),
                    "finetune": dict(self.finetune), "torch_threads": torch.get_num_threads()}
