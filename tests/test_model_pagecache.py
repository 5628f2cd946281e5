"""Reading pages for training: worker processes and the cache of scaled pages change
nothing the network learns, and a damaged cache entry is made again, not trusted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from model.data import read_scaled
from model.pagecache import PageCache, read_pages
from model.release import open_release
from model.train import Run, cache_dir, train
from tests.test_model_train import button_pages, release_of, tiny


@pytest.fixture(scope="module")
def release_path(tmp_path_factory) -> Path:
    return release_of(tmp_path_factory.mktemp("ws"), button_pages, 6)


def _weights(model_dir: Path) -> dict[str, np.ndarray]:
    return load_file(str(model_dir / "model.safetensors"))


@pytest.mark.slow
def test_training_ends_with_the_same_weights_with_or_without_the_page_cache(
        release_path, tmp_path):
    release = open_release(release_path)

    def run(models: Path, **kw) -> dict[str, np.ndarray]:
        return _weights(train(tiny(epochs=2), Run(release, models, log=lambda _: None, **kw)))

    plain = run(tmp_path / "plain", cache=False)
    cold = run(tmp_path / "cached", cache=True, jobs=2)  # decodes and fills the cache
    entries = sorted(cache_dir(tmp_path / "cached").rglob("*.npz"))
    pages = len(release.pages("train")) + len(release.pages("val"))
    assert len(entries) == pages
    stamps = [p.stat().st_mtime_ns for p in entries]
    warm = run(tmp_path / "cached", cache=True)  # reads every page from the cache
    assert [p.stat().st_mtime_ns for p in entries] == stamps, "a cached page was decoded again"
    for other in (cold, warm):
        assert other.keys() == plain.keys()
        for k in plain:
            np.testing.assert_array_equal(plain[k], other[k], err_msg=k)


def test_a_damaged_or_truncated_cache_entry_is_made_again(release_path, tmp_path):
    release = open_release(release_path)
    refs = release.pages("train")[:3]
    cache = PageCache.of(tmp_path / ".cache", release, 128)
    read_pages(refs, release.classes, 128, cache=cache)
    paths = [cache.path(cache.key(p)) for p in refs]
    assert all(p.is_file() for p in paths)
    data = paths[0].read_bytes()
    paths[0].write_bytes(data[: len(data) // 2])  # truncated
    data = bytearray(paths[1].read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte in the pixels
    paths[1].write_bytes(bytes(data))

    got = read_pages(refs, release.classes, 128, cache=cache)
    for ref, page in zip(refs, got, strict=True):
        fresh = read_scaled(ref, release.classes, 128)
        np.testing.assert_array_equal(page.rgb, fresh.rgb)
        np.testing.assert_array_equal(page.elements, fresh.elements)
        np.testing.assert_array_equal(page.regions, fresh.regions)
    # ...and the entries were written again, whole.
    lazy = read_pages(refs, release.classes, 128, cache=cache, in_memory=False)
    for ref, page in zip(refs, lazy, strict=True):
        np.testing.assert_array_equal(page.rgb, read_scaled(ref, release.classes, 128).rgb)
    assert not list(cache.root.rglob(".tmp-*"))


def test_cache_entries_differ_by_working_width_and_classes(release_path, tmp_path):
    release = open_release(release_path)
    ref = release.pages("train")[0]
    a = PageCache.of(tmp_path, release, 128)
    b = PageCache.of(tmp_path, release, 256)
    assert a.path(a.key(ref)) != b.path(b.key(ref))
    assert a.key(ref) == PageCache.of(tmp_path, release, 128).key(ref)


def test_regions_drawn_at_the_working_width_match_regions_drawn_at_full_size(release_path):
    """Drawing the rectangles scaled is the shortcut; the page's own-size target scaled
    down by majority is the reference."""
    from model.data import scale_labels
    from model.release import page_targets

    release = open_release(release_path)
    for ref in release.pages("train")[:3]:
        _, _, regions = page_targets(ref, release.classes)
        reference = scale_labels(regions, 128)
        got = read_scaled(ref, release.classes, 128).regions
        assert got.shape == reference.shape
        assert (got == reference).mean() >= 0.99
