"""Training: a tiny network learns a few pages, a killed run resumes to the same weights,
and the model directory is written whole with its card and curves."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.numpy import load_file

from catalog import Catalog, Config, Workspace
from export.release import make_release
from export.synthetic import add_page, draw_page, write_annotation
from model.evaluate import evaluate
from model.network import NetConfig
from model.release import ReleaseError, open_release
from model.store import load_model
from model.train import Run, TrainConfig, bf16_supported, resolve_precision, train

ROOT = Path(__file__).resolve().parent.parent
TINY = NetConfig(stem=8, widths=(8, 16, 24, 32), decoder=(24, 16, 16, 8), full_res=8)


def button_pages(ws: Workspace, n: int, width: int = 256, height: int = 512) -> None:
    """Synthetic pages whose links are drawn as buttons: the drawn pages leave interactive
    boxes without pixels of their own, which no pixel-only model can see."""
    with Catalog(ws.catalog_path) as cat:
        for i in range(n):
            img, _, masks = draw_page(width, height, seed=i)
            img = img.copy()
            img[masks["interactive"] & ~masks["text"]] = (70, 130, 200)
            add_page(ws, cat, f"https://www.site{i}.org/p{i}", seed=i, width=width,
                     height=height, pixels=img)


BUTTON = (70, 130, 200)


def big_button_pages(ws: Workspace, n: int, width: int = 256, height: int = 512) -> None:
    """Synthetic pages whose interactive elements are buttons big enough to learn at the
    working width (80x32 px, one in the header, two in the footer, placed by the page's
    seed), and nothing else interactive: draw_page's own links are rings a few pixels
    wide around their text, boxes without pixels of their own, and its sidebar buttons
    14 px wide at this width, where a pixel of border is a seventh of their area."""
    with Catalog(ws.catalog_path) as cat:
        for i in range(n):
            img, regions, masks = draw_page(width, height, seed=i)
            img = img.copy()
            rng = np.random.default_rng(1000 + i)
            interactive = np.zeros_like(masks["interactive"])
            head, foot = min(120, height // 6), min(160, height // 6)
            x = int(rng.integers(150, width - 90))
            interactive[head // 2 - 16: head // 2 + 16, x: x + 80] = True
            for x in (int(rng.integers(10, 40)), int(rng.integers(130, width - 90))):
                y = height - foot + int(rng.integers(10, foot - 42))
                interactive[y: y + 32, x: x + 80] = True
            img[interactive] = BUTTON
            pid = add_page(ws, cat, f"https://www.site{i}.org/p{i}", seed=i, width=width,
                           height=height, pixels=img)
            write_annotation(ws.page_dir(pid), "annotation.json", pid, width, height, regions,
                             {**masks, "interactive": interactive})


def release_of(root: Path, pages, n: int) -> Path:
    """A release of n synthetic pages drawn by `pages(ws, n)`, 40% of their sites in val."""
    ws = Workspace(root)
    ws.ensure()
    pages(ws, n)
    cfg = Config()
    cfg.export.val_ratio = 0.4
    rel = make_release(ws, cfg, log=lambda _: None)
    assert rel.per_split["train"] >= 2 and rel.per_split["val"] >= 1, rel.per_split
    return rel.path


@pytest.fixture(scope="module")
def big_button_release(tmp_path_factory) -> Path:
    return release_of(tmp_path_factory.mktemp("ws"), big_button_pages, 6)


@pytest.fixture(scope="module")
def small_release(tmp_path_factory) -> Path:
    return release_of(tmp_path_factory.mktemp("ws"), button_pages, 8)


BF16 = pytest.mark.skipif(not bf16_supported(torch.device("cpu")),
                          reason="this CPU has no bfloat16 support in oneDNN")


def tiny(**kw) -> TrainConfig:
    # One thread: on a shared machine two spinning threads run slower than one. float32
    # unless a test asks: "auto" would depend on the machine's CPU.
    base = dict(working_width=256, crop=128, batch=2, epochs=4, lr=0.01, network=TINY,
                threads=1, precision="fp32")
    return TrainConfig(**{**base, **kw})


@pytest.mark.slow
def test_a_tiny_network_overfits_a_few_pages(big_button_release, tmp_path):
    release = open_release(big_button_release)
    # No recoloured panels: memorising pages means seeing the same pixels every epoch.
    # 60 epochs: float32 kernels differ between CPUs, and at 50 the last loss was 2.35/5.3
    # on one and 2.35/4.1 on another (at 60: 2.35/7.9 there, IoU on the pages >= 0.984).
    out = train(tiny(epochs=60, panels=0.0),
                Run(release, tmp_path / "models", log=lambda _: None))
    model = load_model(out)
    losses = [e["loss"] for e in model.card["epochs"]]
    assert losses[-1] < losses[0] / 5, losses
    # Measured on the pages it trained on, at their own size: every class, background too.
    iou = evaluate(model, release, "train").elements["model"]["iou"]
    assert min(iou.values()) >= 0.9, iou


@pytest.mark.slow
@BF16
def test_a_tiny_network_overfits_a_few_pages_in_bf16(big_button_release, tmp_path):
    release = open_release(big_button_release)
    out = train(tiny(epochs=50, precision="bf16", panels=0.0),
                Run(release, tmp_path / "models", log=lambda _: None))
    model = load_model(out)
    assert model.card["config"]["precision"] == "bf16"
    losses = [e["loss"] for e in model.card["epochs"]]
    # Its loss falls less than float32's (0.69 against 0.44 from 2.35, measured) while its
    # IoU is as high: the losses of the two runs part ways after a few epochs.
    assert losses[-1] < losses[0] / 3, losses
    iou = evaluate(model, release, "train").elements["model"]["iou"]
    assert min(iou.values()) >= 0.9, iou


def test_auto_precision_resolves_for_the_device_and_bf16_is_refused_where_missing(
        monkeypatch):
    import model.train as mt

    cpu = torch.device("cpu")
    assert resolve_precision("fp32", cpu) == "fp32"
    assert resolve_precision("auto", cpu) == ("bf16" if bf16_supported(cpu) else "fp32")
    with pytest.raises(ValueError, match="unknown precision"):
        resolve_precision("fp16", cpu)
    monkeypatch.setattr(mt, "bf16_supported", lambda device: False)
    assert resolve_precision("auto", cpu) == "fp32"
    with pytest.raises(ValueError, match="--precision fp32"):
        resolve_precision("bf16", cpu)


def _weights(model_dir: Path) -> dict[str, np.ndarray]:
    return load_file(str(model_dir / "model.safetensors"))


@pytest.mark.slow
@pytest.mark.parametrize("variant", [
    {"precision": "fp32"},
    {"precision": "fp32", "jaccard": 0.5},
    pytest.param({"precision": "bf16"}, marks=BF16)], ids=["fp32", "jaccard", "bf16"])
def test_a_killed_run_resumes_to_the_weights_of_an_uninterrupted_one(small_release, tmp_path,
                                                                      variant):
    release = open_release(small_release)
    whole = train(tiny(**variant), Run(release, tmp_path / "a", log=lambda _: None))
    assert json.loads((whole / "model.json").read_text())["config"].items() >= {
        "panels": 0.5, "jaccard": 0.0, **variant}.items()
    # The same run stopped after its second epoch's checkpoint, as a kill would leave it.
    assert train(tiny(**variant),
                 Run(release, tmp_path / "b", log=lambda _: None, stop_after=2)) is None
    assert len(list((tmp_path / "b").glob(".run-*/checkpoint.pt"))) == 1
    with pytest.raises(ValueError, match="--resume"):
        train(tiny(**variant), Run(release, tmp_path / "b", log=lambda _: None))
    resumed = train(tiny(**variant),
                    Run(release, tmp_path / "b", resume=True, log=lambda _: None))
    a, b = _weights(whole), _weights(resumed)
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-5, atol=1e-6, err_msg=k)
    card_a = json.loads((whole / "model.json").read_text())
    card_b = json.loads((resumed / "model.json").read_text())
    assert [e["loss"] for e in card_a["epochs"]] == pytest.approx(
        [e["loss"] for e in card_b["epochs"]], rel=1e-5)
    assert not list((tmp_path / "b").glob(".run-*")), "the finished run left its checkpoint"


@pytest.mark.slow
@pytest.mark.parametrize("augment, option", [("recolour_panels", "panels"),
                                             ("draw_frames", "frames")])
def test_training_crops_get_each_augmentation_at_the_configured_chance(
        small_release, tmp_path, monkeypatch, augment, option):
    import model.train as loop

    seen = []
    real = getattr(loop, augment)

    def watch(rgb, elements, rng, chance, image):
        before = rgb.copy()
        real(rgb, elements, rng, chance, image)
        seen.append((chance, image, int((rgb != before).any(axis=(1, 2, 3)).sum()), len(rgb)))

    monkeypatch.setattr(loop, augment, watch)
    release = open_release(small_release)
    other = {"panels": 0.0, "frames": 0.0}
    train(tiny(epochs=1, **{**other, option: 0.5}),
          Run(release, tmp_path / "m", log=lambda _: None))
    assert seen and {(c, i) for c, i, _, _ in seen} == {(0.5, 2)}  # image is class 2
    changed, crops = sum(s[2] for s in seen), sum(s[3] for s in seen)
    assert 0.2 * crops < changed < 0.8 * crops, (changed, crops)


class _Killed(BaseException):
    """A SIGKILL at a chosen point: nothing after it runs, no handler sees it."""


@pytest.mark.slow
def test_a_run_killed_after_publishing_does_not_publish_again_when_rerun(
        small_release, tmp_path, monkeypatch):
    """Killed between renaming its version into place and removing its run directory: the
    rerun (--resume, as the checkpoint asks) finishes the clean-up and publishes nothing."""
    import model.train as loop

    release = open_release(small_release)
    real_publish = loop.publish

    def publish_then_die(*args, **kw):
        real_publish(*args, **kw)
        raise _Killed

    with monkeypatch.context() as m:
        m.setattr(loop, "publish", publish_then_die)
        with pytest.raises(_Killed):
            train(tiny(), Run(release, tmp_path / "models", log=lambda _: None))
    models = tmp_path / "models"
    assert (models / "m0001" / "model.json").is_file()
    resume = bool(list(models.glob(".run-*/checkpoint.pt")))
    again = train(tiny(), Run(release, models, resume=resume, log=lambda _: None))
    assert again == models / "m0001"
    assert sorted(p.name for p in models.iterdir() if p.name != ".cache") == ["m0001"]


def test_a_publish_removes_what_a_killed_publish_left_and_keeps_a_running_one_s(tmp_path):
    from model.network import SegNet
    from model.store import publish

    models = tmp_path / "models"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    left = models / f".tmp-{dead.pid}-abc"
    running = models / f".tmp-{os.getpid()}-def"
    for d in (left, running):
        d.mkdir(parents=True)
        (d / "model.safetensors").write_bytes(b"half")
    out = publish(models, SegNet(TINY), {"note": "x"}, {})
    assert out == models / "m0001"
    assert not left.exists()
    assert running.is_dir()
    assert not [p for p in models.glob(".tmp-*") if p != running]


def test_a_run_s_note_names_its_version_only_when_that_version_holds_its_weights(tmp_path):
    from model.rundir import PUBLISHED, note_published, published_by

    models, run_dir = tmp_path / "models", tmp_path / "models" / ".run-k"
    (models / "m0001").mkdir(parents=True)
    (models / "m0001" / "model.json").write_text(json.dumps({"weights_sha256": "aa"}))
    assert published_by(run_dir, models) is None  # no note: nothing was published
    note_published(run_dir, "m0001", "aa")
    assert published_by(run_dir, models) == models / "m0001"
    note_published(run_dir, "m0001", "bb")  # another run took the name first
    assert published_by(run_dir, models) is None
    note_published(run_dir, "m0002", "aa")  # killed before its rename
    assert published_by(run_dir, models) is None
    for junk in ("{", "[]", '{"version": 5}', '{"version": "../models/m0001"}'):
        (run_dir / PUBLISHED).write_text(junk)
        assert published_by(run_dir, models) is None, junk
    (models / "m0001" / "model.json").write_text("[]")
    note_published(run_dir, "m0001", "aa")
    assert published_by(run_dir, models) is None


@pytest.mark.slow
def test_model_directory_holds_weights_card_and_curves(small_release, tmp_path):
    release = open_release(small_release)
    first = train(tiny(epochs=2), Run(release, tmp_path / "models", log=lambda _: None))
    second = train(tiny(epochs=2, seed=1), Run(release, tmp_path / "models", log=lambda _: None))
    assert (first.name, second.name) == ("m0001", "m0002")
    card = json.loads((first / "model.json").read_text())
    classes = json.loads((small_release / "classes.json").read_text())["classes"]
    assert card["classes"] == classes
    assert card["release"]["version"] == small_release.name
    assert len(card["release"]["sha256sums_sha256"]) == 64
    assert card["input"]["working_width"] == 256
    assert [e["epoch"] for e in card["epochs"]] == [1, 2]
    assert set(card["val"]["elements"]["iou"]) == {"background", "text", "image", "interactive"}
    with Image.open(first / "curves.png") as im:
        assert im.size[0] > 400 and len(im.getcolors(1 << 16)) > 3  # drawn, not blank
    assert not list((tmp_path / "models").glob(".tmp-*"))


def release_without_val(root: Path) -> Path:
    ws = Workspace(root)
    ws.ensure()
    button_pages(ws, 2)
    cfg = Config()
    cfg.export.val_ratio = 0.0
    return make_release(ws, cfg, log=lambda _: None).path


def test_a_release_without_val_pages_is_refused_before_training(tmp_path):
    rel = release_without_val(tmp_path / "ws")
    with pytest.raises(ReleaseError, match="no val pages") as err:
        train(tiny(), Run(open_release(rel), tmp_path / "models", log=lambda _: None))
    assert "\n" not in str(err.value)
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())


def _cli_train(release: Path, ws: Path, *extra: str, wait: bool = True):
    cmd = [sys.executable, "-m", "model", "train", str(release), "--epochs", "3",
           "--working-width", "128", "--crop", "64", "--batch", "4", "--threads", "1",
           "--time-budget", "60", *extra]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if wait:
        return subprocess.run(cmd, cwd=ROOT, env=env, text=True, capture_output=True,
                              timeout=300)
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


@pytest.mark.slow
def test_make_train_killed_after_a_checkpoint_resumes_to_the_same_weights(
        small_release, tmp_path):
    a, b = tmp_path / "a" / "releases" / "v0001", tmp_path / "b" / "releases" / "v0001"
    for copy in (a, b):
        shutil.copytree(small_release, copy)
    whole = _cli_train(a, tmp_path / "a")
    assert whole.returncode == 0, whole.stderr
    assert whole.stdout.strip().endswith("m0001")
    proc = _cli_train(b, tmp_path / "b", wait=False)
    ckpt = None
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        found = list((tmp_path / "b" / "models").glob(".run-*/checkpoint.pt"))
        if found:
            ckpt = found[0]
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert ckpt is not None, "the run finished before its first checkpoint"
    assert not (tmp_path / "b" / "models" / "m0001").exists()
    again = _cli_train(b, tmp_path / "b")
    assert again.returncode == 2 and "--resume" in again.stderr
    resumed = _cli_train(b, tmp_path / "b", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    wa = _weights(tmp_path / "a" / "models" / "m0001")
    wb = _weights(tmp_path / "b" / "models" / "m0001")
    for k in wa:
        np.testing.assert_allclose(wa[k], wb[k], rtol=1e-5, atol=1e-6, err_msg=k)


def test_a_time_budget_plans_whole_epochs_and_a_partial_last_one():
    from model.budget import budget_plan

    # 100 s: 10 steps of 1 s an epoch, validations of 5 s.
    assert budget_plan(100, 1.0, 5.0, 10, 10, 30) == (7, 65)
    # Room for less than one epoch: the steps that fit, one validation.
    assert budget_plan(8, 1.0, 5.0, 10, 10, 30) == (1, 3)
    # More room than the epochs asked for: those epochs, whole.
    assert budget_plan(1000, 1.0, 5.0, 10, 10, 4) == (4, 40)
    # No room at all still trains a step.
    assert budget_plan(1, 1.0, 5.0, 10, 10, 4) == (1, 1)
    # Planned again at an epoch's end: whole epochs from the next one.
    assert budget_plan(30, 1.0, 5.0, 0, 10, 30) == (3, 15)
    # Planned again 4 steps into an epoch: its 6 steps left, then whole epochs.
    assert budget_plan(30, 1.0, 5.0, 6, 10, 30) == (2, 16)


def test_a_budget_is_planned_again_as_steps_speed_up():
    from model.budget import Pacer

    pacer = Pacer(deadline=200.0, steps_per_epoch=10, max_epochs=30, val_s=5.0, every=5,
                  skip=0)
    for _ in range(5):
        pacer.step_done(4.0)
    assert pacer.due()
    slow = pacer.plan(now=0.0, epoch=0, step_in_epoch=5, step=5)
    for _ in range(40):
        pacer.step_done(1.0)
    fast = pacer.plan(now=100.0, epoch=1, step_in_epoch=0, step=45)
    # 4 s steps: 43 more steps and 5 validations fit the 200 s; at 1 s, 65 more.
    assert slow == (5, 48)
    assert fast == (8, 110)


def test_each_epoch_validates_pages_of_every_val_site():
    from types import SimpleNamespace

    from model.train import epoch_val_subset

    refs = [SimpleNamespace(page_id=f"{s}{i:03d}", site=s) for s in "abc"
            for i in range({"a": 50, "b": 3, "c": 20}[s])]
    picked = epoch_val_subset(refs, 12)
    assert len(picked) == 12
    sites = [refs[i].site for i in picked]
    assert (sites.count("a"), sites.count("b"), sites.count("c")) == (5, 3, 4)
    assert epoch_val_subset(refs, 0) == list(range(len(refs)))
