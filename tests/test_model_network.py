"""The network in its channels-last layout: narrow configurations train without corrupting
memory, and the layout changes no output."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from model.network import BasicBlock, NetConfig, SegNet

ROOT = Path(__file__).resolve().parent.parent

# A strided 1x1 convolution's channels-last backward under 16 channels corrupted the heap
# (torch 2.13): the process died with "free(): invalid next size". Run in a child process so
# that a crash fails this test instead of ending the session.
_TRAIN_STEPS = """
import torch
from model.network import NetConfig, SegNet
torch.set_num_threads(1)
torch.manual_seed(0)
for cfg in [NetConfig(stem=8, widths=(8, 16, 24, 32), decoder=(24, 16, 16, 8), full_res=8),
            NetConfig(stem=4, widths=(4, 4, 8, 8), decoder=(8, 8, 4, 4), full_res=4),
            NetConfig(stem=8, widths=(8, 8, 8, 8), decoder=(8, 8, 8, 8), full_res=0)]:
    net = SegNet(cfg)
    x = torch.randn(2, 3, 128, 256)
    for _ in range(3):
        e, r = net(x)
        (e.mean() + r.mean()).backward()
print("ok")
"""


def test_narrow_networks_train_in_channels_last_without_crashing():
    out = subprocess.run([sys.executable, "-c", _TRAIN_STEPS], cwd=ROOT, text=True,
                         capture_output=True, timeout=120, env={"PYTHONPATH": str(ROOT)})
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


@pytest.mark.parametrize("cin,cout", [(8, 8), (8, 16), (24, 32)])
def test_a_strided_shortcut_equals_pytorch_s_strided_convolution(cin, cout):
    torch.manual_seed(0)
    block = BasicBlock(cin, cout, stride=2).eval()
    conv = torch.nn.Conv2d(cin, cout, 1, 2, bias=False)
    conv.weight.data.copy_(block.short[0].weight.data)
    x = torch.randn(1, cin, 32, 48)
    with torch.no_grad():
        ours = block.short(x[:, :, ::2, ::2])
        theirs = block.short[1](conv(x))
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)


def test_channels_last_gives_the_outputs_of_the_plain_layout():
    torch.manual_seed(0)
    cfg = NetConfig(stem=8, widths=(8, 16, 24, 32), decoder=(24, 16, 16, 8))
    fast = SegNet(cfg).eval()
    plain = SegNet(cfg, memory_format=torch.contiguous_format).eval()
    plain.load_state_dict(fast.state_dict())
    assert fast.encoder.stem[0][0].weight.is_contiguous(memory_format=torch.channels_last)
    assert plain.encoder.stem[0][0].weight.is_contiguous()
    x = torch.randn(1, 3, 96, 128)
    with torch.no_grad():
        for a, b in zip(fast(x), plain(x), strict=True):
            assert b.is_contiguous() and not a.is_contiguous()
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
