"""The network: a ResNet encoder, a U-Net-like decoder and two segmentation heads.

Built from parts with one job each, as segmentation_models_pytorch builds its models: the
encoder turns a page into features at strides 2 to 32, the decoder climbs back to stride 2
joining each level's skip, and each head is a 1x1 convolution upsampled to the input.
Both heads are softmax over their classes with a background class: the release's semantic
mask holds one element class per pixel (a later element class wins) and one innermost
region per pixel, which is exactly what an argmax over a softmax gives back.

BatchNorm, not GroupNorm: in eval mode it is a per-pixel affine map, so a page cut into
windows gives the same activations as the whole page wherever the receptive field fits.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class NetConfig:
    """Widths of the encoder's four residual stages (ResNet-18 is 64-512) and of the decoder
    levels from stride 16 up to stride 2."""

    stem: int = 24
    widths: tuple[int, ...] = (32, 64, 128, 192)
    blocks: tuple[int, ...] = (2, 2, 2, 2)
    decoder: tuple[int, ...] = (96, 64, 48, 24)
    # A last decoder level at the input's own resolution, joined with the input pixels:
    # text lines are 4 to 6 px tall at the working width, too thin for a stride-2 head.
    full_res: int = 8
    elements: int = 4  # background + text, image, interactive
    regions: int = 8  # background + header ... segment

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> NetConfig:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in known.items()})


def _conv_bn(cin: int, cout: int, stride: int = 1, relu: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class BasicBlock(nn.Module):
    """ResNet's basic block: two 3x3 convolutions around an identity (or 1x1) shortcut."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.body = nn.Sequential(_conv_bn(cin, cout, stride), _conv_bn(cout, cout, relu=False))
        # The shortcut's 1x1 convolution runs at stride 1 on every other pixel, which is the
        # same sum with the same weights: oneDNN's channels-last backward of a strided 1x1
        # convolution corrupts the heap under 16 channels (torch 2.13, "free(): invalid
        # next size"; tests/test_model_network.py).
        self.stride = stride
        self.short = (
            nn.Identity() if stride == 1 and cin == cout
            else nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = x[:, :, ::self.stride, ::self.stride] if self.stride > 1 else x
        return F.relu(self.body(x) + self.short(skip), inplace=True)


class Encoder(nn.Module):
    """Stem at stride 2, then four residual stages at strides 4, 8, 16 and 32."""

    def __init__(self, cfg: NetConfig):
        super().__init__()
        self.stem = nn.Sequential(_conv_bn(3, cfg.stem, 2), _conv_bn(cfg.stem, cfg.stem))
        stages = []
        cin = cfg.stem
        for width, n in zip(cfg.widths, cfg.blocks, strict=True):
            blocks = [BasicBlock(cin, width, 2)]
            blocks += [BasicBlock(width, width) for _ in range(n - 1)]
            stages.append(nn.Sequential(*blocks))
            cin = width
        self.stages = nn.ModuleList(stages)
        self.channels = [cfg.stem, *cfg.widths]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = [self.stem(x)]
        for stage in self.stages:
            feats.append(stage(feats[-1]))
        return feats  # strides 2, 4, 8, 16, 32


class Decoder(nn.Module):
    """From stride 32 up to stride 2: upsample, join the skip of that level, one conv."""

    def __init__(self, skips: list[int], widths: tuple[int, ...]):
        super().__init__()
        deep = skips[-1]
        levels = []
        for skip, width in zip(reversed(skips[:-1]), widths, strict=True):
            levels.append(_conv_bn(deep + skip, width))
            deep = width
        self.levels = nn.ModuleList(levels)

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        """Each level's output, stride 16 first and stride 2 last."""
        x, out = feats[-1], []
        for level, skip in zip(self.levels, reversed(feats[:-1]), strict=True):
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = level(torch.cat([x, skip], dim=1))
            out.append(x)
        return out


class SegNet(nn.Module):
    """Input (N, 3, H, W) normalised RGB, H and W multiples of 32; output logits of the
    element and region heads at (H, W)."""

    STRIDE = 32
    FEATURE_STRIDE = 4  # of the decoder level that forward(..., features=True) also returns

    def __init__(self, cfg: NetConfig | None = None,
                 memory_format: torch.memory_format = torch.channels_last):
        super().__init__()
        self.cfg = cfg or NetConfig()
        self.encoder = Encoder(self.cfg)
        self.decoder = Decoder(self.encoder.channels, self.cfg.decoder)
        width = self.cfg.decoder[-1]
        self.refine = None
        if self.cfg.full_res:
            self.refine = _conv_bn(width + 3, self.cfg.full_res)
            width = self.cfg.full_res
        self.element_head = nn.Conv2d(width, self.cfg.elements, 1)
        self.region_head = nn.Conv2d(width, self.cfg.regions, 1)
        # Channels-last: oneDNN's convolutions run on it about 1.6x faster here (a training
        # step of 8 crops 1.166 -> 0.722 s, a 1024-row window 0.090 -> 0.058 s, 2 threads;
        # bench/train_step.py). Copying a state dict in keeps this layout; store.publish
        # saves contiguous copies.
        self.memory_format = memory_format
        self.to(memory_format=memory_format)

    @property
    def feature_channels(self) -> int:
        return self.cfg.decoder[-2]

    def forward(self, x: torch.Tensor, features: bool = False) -> tuple[torch.Tensor, ...]:
        """(element logits, region logits), and with `features` the decoder's stride-4
        level too: what the network sees of a page, for the picture chooser to read."""
        x = x.contiguous(memory_format=self.memory_format)
        levels = self.decoder(self.encoder(x))
        y = levels[-1]
        up = dict(size=x.shape[-2:], mode="bilinear", align_corners=False)
        if self.refine is not None:
            y = self.refine(torch.cat([F.interpolate(y, **up), x], dim=1))
            heads = self.element_head(y), self.region_head(y)
        else:
            heads = (F.interpolate(self.element_head(y), **up),
                     F.interpolate(self.region_head(y), **up))
        return (*heads, levels[-2]) if features else heads


@dataclass
class Normalise:
    """RGB uint8 to the network's input: fixed statistics, so nothing depends on data."""

    mean: tuple[float, float, float] = field(default=(0.9, 0.9, 0.9))
    std: tuple[float, float, float] = field(default=(0.25, 0.25, 0.25))

    def __call__(self, rgb: torch.Tensor) -> torch.Tensor:
        """(N, H, W, 3) or (H, W, 3) uint8 -> (N, 3, H, W) float32."""
        if rgb.ndim == 3:
            rgb = rgb[None]
        x = rgb.permute(0, 3, 1, 2).float().div_(255.0).contiguous()
        mean = torch.tensor(self.mean).view(1, 3, 1, 1)
        std = torch.tensor(self.std).view(1, 3, 1, 1)
        return (x - mean) / std
