"""A picture labelled over what it shows: annotate/propose/visible.py and its use in the
element masks and the pre-annotation."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from annotate.propose.boxes import parse_boxes
from annotate.propose.cli import up_to_date
from annotate.propose.labelset import label_set
from annotate.propose.masks import element_masks
from annotate.propose.preannotate import VERSION, preannotate
from annotate.propose.visible import TOL, page_colour, visible_slices
from catalog.config import PreannotateConfig


def _box(i, kind, bbox, parent=None, **kw):
    return {"id": i, "kind": kind, "bbox": list(bbox), "tag": kw.pop("tag", "div"),
            "parent": parent, "depth": kw.pop("depth", 1), "visible": True,
            "background": kw.pop("background", "rgb(255, 255, 255)"), "z": kw.pop("z", 0),
            "font_size": 14, "text": kw.pop("text", ""), **kw}


def plot_page() -> np.ndarray:
    """A white page, 200 x 300, with a plot drawn at rows 40-90, columns 60-160 of a
    picture whose box (rows 20-110, columns 30-190) is white around it."""
    gray = np.full((200, 300), 255, np.uint8)
    gray[40:90, 60:160] = 250  # the axes' pale fill, within TOL of the paper
    gray[40, 60:160] = gray[89, 60:160] = 0  # the spines
    gray[40:90, 60] = gray[40:90, 159] = 0
    gray[60:64, 80:140] = 30  # a curve
    return gray


def test_a_plots_white_figure_is_cut_off():
    rows, cols = visible_slices(plot_page(), slice(20, 110), slice(30, 190))
    assert (rows, cols) == (slice(40, 90), slice(60, 160))


def test_a_picture_on_a_busy_page_keeps_its_box():
    gray = plot_page()
    gray[0:200:3, :] = 0  # stripes behind everything: the page has no one colour
    gray[40:90, 60:160] = plot_page()[40:90, 60:160]
    assert page_colour(gray, slice(20, 110), slice(30, 190)) is None
    assert visible_slices(gray, slice(20, 110), slice(30, 190)) == (slice(20, 110),
                                                                      slice(30, 190))


def test_a_picture_that_shows_only_the_page_is_none_and_one_over_the_whole_page_stays():
    blank = np.full((100, 100), 240, np.uint8)
    assert visible_slices(blank, slice(10, 50), slice(10, 50)) is None
    # No page around it to read a colour from: the box is what the DOM says.
    assert visible_slices(blank, slice(0, 100), slice(0, 100)) == (slice(0, 100), slice(0, 100))


def test_a_picture_with_a_caption_against_its_edge_still_reads_the_page():
    gray = plot_page()
    gray[111:113, 30:100] = 0  # a caption's first row of ink just under the box
    assert visible_slices(gray, slice(20, 110), slice(30, 190)) == (slice(40, 90),
                                                                      slice(60, 160))


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 255), st.integers(1, 60), st.integers(1, 60), st.data())
def test_the_visible_box_is_the_box_of_what_differs_from_the_page(paper, h, w, data):
    gray = np.full((80, 80), paper, np.uint8)
    y0 = data.draw(st.integers(5, 75 - h))
    x0 = data.draw(st.integers(5, 75 - w))
    # A picture box anywhere around the drawing, inside the page with room for the ring.
    by0, bx0 = data.draw(st.integers(2, y0)), data.draw(st.integers(2, x0))
    by1, bx1 = data.draw(st.integers(y0 + h, 78)), data.draw(st.integers(x0 + w, 78))
    ink = (paper + 128) % 256
    gray[y0, x0:x0 + w] = ink  # the drawing's outer rows and columns show ink
    gray[y0 + h - 1, x0:x0 + w] = ink
    gray[y0:y0 + h, x0] = ink
    gray[y0:y0 + h, x0 + w - 1] = ink
    rows, cols = visible_slices(gray, slice(by0, by1), slice(bx0, bx1))
    assert (rows, cols) == (slice(y0, y0 + h), slice(x0, x0 + w))
    box = gray[by0:by1, bx0:bx1].astype(int)
    outside = np.ones(box.shape, bool)
    outside[y0 - by0:y0 - by0 + h, x0 - bx0:x0 - bx0 + w] = False
    assert (np.abs(box[outside] - paper) <= TOL).all()


def _page(boxes, width=300, height=200):
    return parse_boxes({"schema": 1, "width": width, "height": height, "boxes": boxes})


def test_element_masks_cut_pictures_only_when_given_the_screenshot():
    page = _page([_box(0, "block", (0, 0, 300, 200), tag="body", depth=0),
                  _box(1, "image", (30, 20, 160, 90), 0, tag="img"),
                  _box(2, "text", (30, 120, 200, 20), 0, text="a caption")])
    whole = element_masks(page)["image"] > 0
    assert whole[20:110, 30:190].all() and whole.sum() == 90 * 160
    masks = element_masks(page, gray=plot_page())
    cut = masks["image"] > 0
    assert cut[40:90, 60:160].all() and cut.sum() == 50 * 100
    # Text boxes are what the capture measured already: left as they are.
    assert (masks["text"] > 0).sum() == 200 * 20


def test_a_stacked_picture_still_hides_its_whole_box():
    page = _page([_box(0, "block", (0, 0, 300, 200), tag="body", depth=0),
                  _box(1, "text", (0, 30, 300, 20), 0, text="under the picture"),
                  _box(2, "image", (30, 20, 160, 90), 0, tag="img", z=5)])
    gray = plot_page()
    masks = element_masks(page, gray=gray)
    text, image = masks["text"] > 0, masks["image"] > 0
    assert not text[30:50, 30:190].any()  # under the picture's margin too
    assert text[30:50, 0:30].all()
    assert image.sum() == 50 * 100


def test_element_masks_refuse_a_screenshot_of_another_size():
    page = _page([_box(0, "image", (30, 20, 160, 90), tag="img")])
    try:
        element_masks(page, gray=np.zeros((10, 10), np.uint8))
    except ValueError as exc:
        assert "300x200" in str(exc)
    else:
        raise AssertionError("a screenshot of another size was taken")


def test_preannotate_cuts_pictures_when_asked_and_says_so():
    page = _page([_box(0, "block", (0, 0, 300, 200), tag="body", depth=0),
                  _box(1, "image", (30, 20, 160, 90), 0, tag="img")])
    labels = label_set()
    on = PreannotateConfig(visible_pictures=True)
    ann, masks = preannotate(page, "p", labels, plot_page(), on)
    assert ann.meta["pictures"] == "visible" and (masks["image"] > 0).sum() == 50 * 100
    ann, masks = preannotate(page, "p", labels, plot_page(), PreannotateConfig())
    assert "pictures" not in ann.meta and (masks["image"] > 0).sum() == 90 * 160
    # Without the screenshot there is nothing to cut by, and the record does not claim it.
    ann, masks = preannotate(page, "p", labels, None, on)
    assert "pictures" not in ann.meta and (masks["image"] > 0).sum() == 90 * 160


def test_a_page_is_proposed_again_when_the_pictures_setting_changes():
    cut = {"version": VERSION, "annotator": "pipeline", "pictures": "visible"}
    whole = {"version": VERSION, "annotator": "pipeline"}
    assert up_to_date(cut, None, annotated=False, pictures="visible")
    assert not up_to_date(cut, None, annotated=False, pictures=None)
    assert not up_to_date(whole, None, annotated=False, pictures="visible")
    assert up_to_date(whole, None, annotated=True, pictures="visible")  # corrected: kept
