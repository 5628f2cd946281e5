"""How training code loads a release: the snippets of the dataset card and the README.

Tests run these very strings against a release, and check that the README shows them.
"""

from __future__ import annotations

PYTORCH = '''\
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

release = "datasets/sqlite-docs/releases/v0001"


class WebSegDataset(torch.utils.data.Dataset):
    """One split of a release: RGB image and class-index mask (255 = ignore)."""

    def __init__(self, release, split="train", tiles=False):
        self.root = Path(release) / split / ("tiles" if tiles else "")
        with open(self.root / "metadata.jsonl") as f:
            self.rows = [json.loads(line) for line in f]

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        row = self.rows[i]
        image = np.array(Image.open(self.root / row["file_name"]).convert("RGB"))
        mask = np.array(Image.open(self.root / row["mask_file_name"]))
        return torch.from_numpy(image).permute(2, 0, 1), torch.from_numpy(mask).long()


image, mask = WebSegDataset(release, "train")[0]  # full pages: sizes vary
if (Path(release) / "train" / "tiles").is_dir():  # releases made with --tile N
    tiles = WebSegDataset(release, "train", tiles=True)
    images, masks = next(iter(torch.utils.data.DataLoader(tiles, batch_size=4, shuffle=True)))
'''

HUGGINGFACE = '''\
from datasets import load_dataset

release = "datasets/sqlite-docs/releases/v0001"
ds = load_dataset(
    "imagefolder",
    data_files={
        "train": f"{release}/train/metadata.jsonl",
        "validation": f"{release}/val/metadata.jsonl",
    },
)
example = ds["train"][0]  # {"image": PIL image, "mask": PIL image (class ids), "page_id": ...}
'''

COCO = '''\
from pycocotools.coco import COCO

release = "datasets/sqlite-docs/releases/v0001"
coco = COCO(f"{release}/train/annotations.json")  # regions and element instances, RLE
'''
