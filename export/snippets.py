"""How training code loads a release: the snippets of the dataset card and the README.

Tests run these very strings against a release, and check that the README shows them.
"""

from __future__ import annotations

PYTORCH = '''\
import functools
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

release = "datasets/sqlite-docs/releases/v0001"


class WebSegDataset(torch.utils.data.Dataset):
    """One split of a release: RGB image and class-index mask (255 = ignore). With
    tiles=True, its tiles: windows cropped from their page, padded where the page is
    smaller than a tile (image black, mask 255)."""

    def __init__(self, release, split="train", tiles=False):
        self.release = Path(release)
        self.dir = self.release / split / ("tiles" if tiles else "")
        with open(self.dir / "metadata.jsonl") as f:
            self.rows = [json.loads(line) for line in f]

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, i):
        row = self.rows[i]
        if "window" in row:  # a tile: a window over its page's image and mask
            x, y, w, h = row["window"]
            image = np.zeros((row["size"], row["size"], 3), np.uint8)
            mask = np.full((row["size"], row["size"]), 255, np.uint8)
            image[:h, :w] = self.pixels(row["image"])[y : y + h, x : x + w]
            mask[:h, :w] = self.pixels(row["mask"])[y : y + h, x : x + w]
        else:  # a page, or a tile file of a release made before tiles were windows
            image = np.array(Image.open(self.dir / row["file_name"]).convert("RGB"))
            mask = np.array(Image.open(self.dir / row["mask_file_name"]))
        return torch.from_numpy(image).permute(2, 0, 1), torch.from_numpy(mask).long()

    @functools.lru_cache(maxsize=4)  # a page's windows in a row decode it once
    def pixels(self, name):
        with Image.open(self.release / name) as im:
            return np.asarray(im if im.mode == "P" else im.convert("RGB"))


image, mask = WebSegDataset(release, "train")[0]  # full pages: sizes vary
if (Path(release) / "train" / "tiles").is_dir():  # releases made with --tile N
    tiles = WebSegDataset(release, "train", tiles=True)
    images, masks = next(iter(torch.utils.data.DataLoader(tiles, batch_size=4, shuffle=True)))
'''

HUGGINGFACE = '''\
from pathlib import Path

from datasets import load_dataset
from PIL import Image

release = "datasets/sqlite-docs/releases/v0001"
ds = load_dataset(
    "imagefolder",
    data_files={
        "train": f"{release}/train/metadata.jsonl",
        "validation": f"{release}/val/metadata.jsonl",
    },
)
example = ds["train"][0]  # {"image": PIL image, "mask": PIL image (class ids), "page_id": ...}


def crop(batch):
    """Tiles of a batch of windows, cut from their pages as they are read."""
    out = {"image": [], "mask": [], "page_id": batch["page_id"]}
    for i, (x, y, w, h) in enumerate(batch["window"]):
        for key, fill in (("image", 0), ("mask", 255)):
            with Image.open(f"{release}/{batch[key][i]}") as page:
                page = page if page.mode == "P" else page.convert("RGB")
                tile = Image.new(page.mode, (batch["size"][i],) * 2, fill)  # padding
                tile.paste(page.crop((x, y, x + w, y + h)))
            out[key].append(tile)
    return out


if Path(release, "train", "tiles").is_dir():  # releases made with --tile N
    tiles = load_dataset("json", data_files={  # the windows' table, cropped on access
        "train": f"{release}/train/tiles/metadata.jsonl",
        "validation": f"{release}/val/tiles/metadata.jsonl",
    }).with_transform(crop)
    tile = tiles["train"][0]  # {"image": PIL image, "mask": PIL image, "page_id": ...}
'''

COCO = '''\
from pycocotools.coco import COCO

release = "datasets/sqlite-docs/releases/v0001"
coco = COCO(f"{release}/train/annotations.json")  # regions and element instances, RLE
'''
