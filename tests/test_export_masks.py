"""Semantic masks, COCO RLE instances and tiles: the pure pieces of the export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from pycocotools import mask as mask_utils

from catalog.config import LabelsConfig, load_config
from export.coco import page_annotations, semantic_from_coco
from export.masks import (
    ClassSet,
    component_instances,
    decode_rle,
    int_box,
    paint_semantic,
    rect_rle,
)
from export.tiles import origins, resized_size, tile_windows

CLASSES = ClassSet.from_labels(LabelsConfig())
H, T, MAIN, SEG = (CLASSES.index(n) for n in ("header", "text", "main", "segment"))
IMG, INTER = CLASSES.index("image"), CLASSES.index("interactive")


def _coco_encode(mask: np.ndarray) -> str:
    return mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))["counts"].decode()


@given(arrays(bool, st.tuples(st.integers(1, 24), st.integers(1, 24))))
@settings(max_examples=300, deadline=None)
def test_components_partition_the_mask_and_match_pycocotools(mask):
    union = np.zeros_like(mask)
    for inst in component_instances(mask):
        m = decode_rle(inst.rle)
        assert not (union & m).any()
        union |= m
        # The same string pycocotools would write for that component.
        assert inst.rle["counts"] == _coco_encode(m)
        assert inst.area == m.sum()
        x0, y0, x1, y1 = inst.bbox
        assert m[y0:y1, x0:x1].sum() == inst.area
        assert (not m[:y0].any()) and (not m[y1:].any())
        assert (not m[:, :x0].any()) and (not m[:, x1:].any())
    assert np.array_equal(union, mask)


def test_components_of_a_tall_page_mask():
    mask = np.zeros((4000, 1280), bool)
    mask[150:3800:22] = True  # rows of text lines, 1-pixel each
    mask[10:3990, 1000:1200] = True  # a tall block joins them at the right
    mask[5:20, 0:1280] = True
    inst = component_instances(mask)
    assert sum(i.area for i in inst) == mask.sum()
    for i in inst:
        assert i.rle["counts"] == _coco_encode(decode_rle(i.rle))


@given(st.integers(1, 40), st.integers(1, 40), st.lists(st.floats(-10, 50), min_size=4, max_size=4))
@settings(deadline=None)  # timing varies on a shared machine
def test_rectangle_rle_equals_the_filled_box(h, w, bbox):
    box = int_box(bbox, w, h)
    if box is None:
        return
    x0, y0, x1, y1 = box
    dense = np.zeros((h, w), bool)
    dense[y0:y1, x0:x1] = True
    rle = rect_rle(box, h, w)
    assert np.array_equal(decode_rle(rle), dense)
    assert rle["counts"] == _coco_encode(dense)


def test_boxes_are_rounded_and_clipped_to_the_page():
    assert int_box([-5, 2.4, 20, 3.6], 10, 10) == (0, 2, 10, 6)
    assert int_box([12, 0, 5, 5], 10, 10) is None
    assert int_box([1, 1, 0.2, 5], 10, 10) is None


def test_nested_region_wins_and_elements_paint_over_regions():
    regions = [(MAIN, (0, 0, 10, 10)), (SEG, (2, 2, 6, 6)), (H, (0, 0, 10, 2))]
    text = np.zeros((10, 10), bool)
    text[3, 3:8] = True
    inter = np.zeros((10, 10), bool)
    inter[3, 6:9] = True
    sem = paint_semantic(10, 10, regions, [(INTER, inter), (T, text)])
    assert sem[1, 5] == H  # header (smaller) over main
    assert sem[4, 4] == SEG  # segment nested in main
    assert sem[8, 8] == MAIN
    assert sem[3, 3] == T  # text over the segment
    assert sem[3, 7] == INTER  # interactive over text
    assert sem[3, 9] == MAIN


def test_coco_annotations_repaint_the_same_semantic_mask():
    rng = np.random.default_rng(3)
    h, w = 60, 40
    regions = [(MAIN, (0, 5, 40, 60)), (H, (0, 0, 40, 8)), (SEG, (5, 20, 30, 40))]
    elements = [(T, rng.random((h, w)) < 0.2), (IMG, rng.random((h, w)) < 0.1),
                (INTER, rng.random((h, w)) < 0.05)]
    sem = paint_semantic(w, h, regions, elements)
    anns = page_annotations(1, w, h, regions, elements)
    assert np.array_equal(semantic_from_coco(anns, w, h, CLASSES), sem)
    assert {a["category_id"] for a in anns} == {MAIN, H, SEG, T, IMG, INTER}


def test_classes_json_documents_ids_precedence_and_ignore():
    doc = CLASSES.to_json()
    assert doc["classes"][0] == {"id": 0, "name": "background", "kind": "background",
                                 "color": "#000000"}
    assert [c["name"] for c in doc["classes"][1:8]] == LabelsConfig().regions
    assert {c["kind"] for c in doc["classes"][8:]} == {"element"}
    assert doc["ignore_index"] == 255 and "largest first" in doc["precedence"]
    assert CLASSES.palette()[3 * H : 3 * H + 3] == [0xE6, 0x19, 0x4B]


@given(st.integers(1, 5000), st.integers(16, 1024))
@settings(deadline=None)  # timing varies on a shared machine
def test_tiles_cover_the_page_and_stay_on_it(length, tile):
    starts = origins(length, tile)
    covered = np.zeros(length, bool)
    for s in starts:
        covered[s : s + tile] = True
        assert s == 0 or s + tile <= length
    assert covered.all()
    assert starts == sorted(set(starts))


def test_a_tall_page_gives_eight_tiles_of_1024():
    assert len(tile_windows(1280, 4000, 1024)) == 8
    assert tile_windows(1280, 4000, 1024)[:2] == [(0, 0), (256, 0)]


def test_resize_keeps_the_aspect_ratio():
    assert resized_size(1280, 8000, 640) == (640, 4000)
    assert resized_size(1280, 8000, 0) == (1280, 8000)


def test_too_many_classes_are_refused():
    with pytest.raises(ValueError, match="254"):
        ClassSet.from_labels(LabelsConfig(regions=[f"r{i}" for i in range(252)]))


@given(st.lists(arrays(bool, (9, 13)), min_size=1, max_size=10))
@settings(max_examples=100, deadline=None)
def test_masks_scanned_together_give_each_mask_its_own_components(masks):
    from export.masks import element_instances

    together = element_instances(masks)
    assert len(together) == len(masks)
    for mask, found in zip(masks, together, strict=True):
        alone = component_instances(mask)
        assert [(i.rle, i.bbox, i.area) for i in found] == [(i.rle, i.bbox, i.area) for i in alone]


def test_components_of_repeated_columns_match_pycocotools():
    # Blocks of identical columns (a text line, a box, a diagonal that joins them).
    mask = np.zeros((60, 50), bool)
    mask[10:22, 3:40] = True
    mask[30:33, 5:45] = True
    for k in range(8):
        mask[22 + k, 40 + k] = True
    for inst in component_instances(mask):
        assert inst.rle["counts"] == _coco_encode(decode_rle(inst.rle))
    assert len(component_instances(mask)) == 2


@pytest.mark.parametrize("shape", [(7, 5, 3), (7, 5, 4), (7, 5), (1, 1, 3)])
def test_png_pixels_round_trip_through_pillow(shape):
    import io

    from PIL import Image

    from export.png import decode_pixels, encode_pixels

    arr = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    data = encode_pixels(arr, 1)
    # Same pixels, same bytes, whatever the array's layout in memory.
    strided = np.zeros((shape[0], 2 * shape[1], *shape[2:]), np.uint8)
    strided[:, ::2] = arr
    assert data == encode_pixels(strided[:, ::2], 1) == encode_pixels(np.asfortranarray(arr), 1)
    with Image.open(io.BytesIO(data)) as im:
        assert im.mode == {3: "RGB", 4: "RGBA"}.get(shape[-1] if len(shape) == 3 else 0, "L")
        assert np.array_equal(np.asarray(im), arr)
    assert np.array_equal(decode_pixels(data, "x"), arr)


def test_palette_png_reads_as_mode_p_with_its_colours_and_top_rows():
    import io

    from PIL import Image

    from export.png import encode_indexed, read_indexed_top

    idx = np.random.default_rng(1).integers(0, 11, (40, 17), dtype=np.uint8)
    palette = CLASSES.palette()
    data = encode_indexed(idx, palette, 1)
    with Image.open(io.BytesIO(data)) as im:
        assert im.mode == "P" and im.getpalette()[:768] == palette
        assert np.array_equal(np.asarray(im), idx)
    top, colours = read_indexed_top(data, 9)
    assert np.array_equal(top, idx[:9]) and colours.reshape(-1).tolist() == palette


def test_other_pngs_decode_through_the_fallback():
    import io

    from PIL import Image

    from export.png import decode_grey8, decode_pixels

    rgb = np.random.default_rng(2).integers(0, 256, (6, 4, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).quantize(8).save(buf, "PNG")  # palette, decoded to RGB
    with Image.open(io.BytesIO(buf.getvalue())) as im:
        want = np.asarray(im.convert("RGB"))
    assert np.array_equal(decode_pixels(buf.getvalue(), "p"), want)
    assert decode_grey8(buf.getvalue()) is None
    with pytest.raises(ValueError, match="not a readable image"):
        decode_pixels(b"not a png", "junk.png")


@given(st.lists(st.tuples(st.sampled_from([T, IMG, INTER]), st.integers(0, 2**31)),
                min_size=1, max_size=6),
       st.integers(1, 12), st.integers(1, 12))
@settings(deadline=None)  # timing varies on a shared machine
def test_elements_repaint_as_pycocotools_decodes_them_even_where_one_class_overlaps(
        instances, h, w):
    """Any element RLEs (several of a class, overlapping, touching, in any order): the
    highest class covering a pixel, as decoding each one with pycocotools and painting
    them in class order gives."""
    anns, expected = [], np.zeros((h, w), np.uint8)
    for cls, seed in instances:
        m = np.random.default_rng(seed).random((h, w)) < 0.4
        rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
        anns.append({"id": len(anns) + 1, "category_id": cls, "bbox": [0, 0, w, h],
                     "segmentation": {"size": [h, w], "counts": rle["counts"].decode()}})
    for cls, _ in sorted(instances):
        for a in anns:
            if a["category_id"] == cls:
                seg = {"size": [h, w], "counts": a["segmentation"]["counts"].encode()}
                expected[mask_utils.decode(seg).astype(bool)] = cls
    assert np.array_equal(semantic_from_coco(anns, w, h, CLASSES), expected)


def test_the_corpus_labels_a_linked_picture_as_image_and_the_default_as_interactive():
    """corpus.toml paints image last: a picture inside a link is image there, the link's
    text and padding stay interactive; the default label set keeps the link on top."""
    link = np.zeros((10, 10), bool)
    link[2:8, 1:9] = True
    picture = np.zeros((10, 10), bool)
    picture[3:7, 2:6] = True
    corpus = ClassSet.from_labels(
        load_config(Path(__file__).resolve().parents[1] / "corpus.toml").labels)
    for classes, inside in ((corpus, "image"), (CLASSES, "interactive")):
        img, inter = classes.index("image"), classes.index("interactive")
        sem = paint_semantic(10, 10, [], [(inter, link), (img, picture)])
        assert sem[4, 3] == classes.index(inside)
        assert sem[4, 7] == inter and sem[0, 0] == 0
