"""Pure pieces of the Label Studio round trip: RLE, labelling config, result parsing, report."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from label_studio_sdk.converter import brush

from annotate.studio.config import config_labels, config_mismatch, labelling_config
from annotate.studio.env import read_env_file, update_env_file
from annotate.studio.report import match_regions, pixel_iou, raster
from annotate.studio.tasks import brush_result, parse_results, rect_result
from catalog.brush_rle import decode_rle, encode_rle, mask_to_rle, rle_to_mask
from catalog.config import LabelsConfig

runs = st.lists(
    st.tuples(st.integers(0, 255), st.integers(1, 70000)), min_size=1, max_size=40
)


def _expand(pairs: list[tuple[int, int]]) -> np.ndarray:
    return np.repeat(
        np.array([v for v, _ in pairs], np.uint8), [n for _, n in pairs]
    )


@settings(max_examples=60, deadline=None)
@given(runs)
def test_encoder_writes_the_sdk_bytes_and_decodes_back(pairs):
    flat = _expand(pairs)
    ours = encode_rle(flat)
    assert ours == brush.encode_rle(flat)
    assert np.array_equal(decode_rle(ours), flat)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 255), min_size=1, max_size=300))
def test_decoder_reads_literal_records(values):
    # The SDK encodes single values as literal records (flag 0); the labelling UI's encoder
    # packs several literals into one record, which the SDK's decoder also reads.
    flat = np.array(values, np.uint8)
    rle = brush.encode_rle(flat)
    assert np.array_equal(decode_rle(rle), flat)
    assert np.array_equal(decode_rle(rle), brush.decode_rle(bytes(rle)))


def _literal_rle(values: list[int]) -> list[int]:
    """One literal record holding several words, as thi-ng rle-pack writes them."""
    bits = f"{len(values):032b}" + f"{7:05b}" + "".join(f"{s - 1:04b}" for s in (3, 4, 8, 16))
    bits += "0" + "10" + f"{len(values) - 1:08b}" + "".join(f"{v:08b}" for v in values)
    bits += "0" * (-len(bits) % 8)
    return [int(bits[i : i + 8], 2) for i in range(0, len(bits), 8)]


def test_decoder_reads_multi_word_literals_like_the_sdk():
    values = [3, 200, 200, 7, 0, 255, 1, 9, 9, 9, 4]
    rle = _literal_rle(values)
    assert brush.decode_rle(bytes(rle)).tolist() == values
    assert decode_rle(rle).tolist() == values


def test_mask_round_trip_on_a_tall_page():
    rng = np.random.default_rng(1)
    mask = np.zeros((3000, 1280), np.uint8)
    mask[rng.integers(0, 3000, 5000), rng.integers(0, 1280, 5000)] = 255
    mask[100:400, 50:900] = 255
    rle = mask_to_rle(mask)
    assert rle == brush.mask2rle(mask)
    assert np.array_equal(rle_to_mask(rle, 1280, 3000), mask)


def test_rle_of_the_wrong_size_is_refused():
    rle = mask_to_rle(np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError, match="not 20x10x4"):
        rle_to_mask(rle, 20, 10)
    with pytest.raises(ValueError, match="truncated"):
        decode_rle(rle[:5])


def test_labelling_config_holds_the_label_set_and_keeps_tall_pages_unsqueezed():
    labels = LabelsConfig()
    xml = labelling_config(labels)
    parsed = config_labels(xml)
    assert parsed.regions == tuple(labels.regions)
    assert parsed.masks == tuple(labels.masks)
    assert 'maxHeight="65536px"' in xml
    assert 'background="#e6194b"' in xml
    assert config_mismatch(xml, labels) == ""
    changed = LabelsConfig(regions=[*labels.regions[:-1], "banner"])
    problem = config_mismatch(xml, changed)
    assert "banner" in problem and "segment" in problem


def test_results_convert_to_pixels_and_masks():
    mask = np.zeros((300, 200), np.uint8)
    mask[10:20, 30:60] = 255
    results = [rect_result("header", [20, 30, 100, 60], 200, 300, "r0"),
               brush_result("text", mask, "m0")]
    parsed = parse_results(results, 200, 300)
    assert parsed.regions == [
        {"label": "header", "bbox": [20.0, 30.0, 100.0, 60.0], "score": 1.0, "source": "human"}
    ]
    assert np.array_equal(parsed.masks["text"], mask)


def test_region_changes_are_counted_per_class():
    proposed = [
        {"label": "header", "bbox": [0, 0, 1000, 100]},
        {"label": "main", "bbox": [0, 100, 1000, 800]},
        {"label": "footer", "bbox": [0, 900, 1000, 100]},
    ]
    final = [
        {"label": "header", "bbox": [0, 0, 1000, 100]},  # kept
        {"label": "main", "bbox": [0, 150, 1000, 700]},  # moved (IoU 0.875)
        {"label": "sidebar", "bbox": [1000, 100, 200, 800]},  # added; footer deleted
    ]
    c = match_regions(proposed, final)
    assert (c["header"].kept, c["header"].moved) == (1, 0)
    assert (c["main"].kept, c["main"].moved) == (0, 1)
    assert (c["footer"].deleted, c["footer"].proposed) == (1, 1)
    assert (c["sidebar"].added, c["sidebar"].proposed) == (1, 0)


def test_pixel_iou_of_rasterised_regions():
    a = raster([{"label": "main", "bbox": [0, 0, 10, 10]}], "main", 20, 20)
    b = raster([{"label": "main", "bbox": [5, 0, 10, 10]}], "main", 20, 20)
    assert pixel_iou(a, b) == pytest.approx(50 / 150)
    assert pixel_iou(np.zeros((2, 2), bool), np.zeros((2, 2), bool)) is None


def test_env_file_is_private_and_keeps_other_lines(tmp_path):
    env = tmp_path / ".env"
    env.write_text("# mine\nOTHER=1\nLABEL_STUDIO_URL=old\n")
    update_env_file(env, {"LABEL_STUDIO_URL": "http://127.0.0.1:1", "LABEL_STUDIO_API_KEY": "k"})
    assert env.stat().st_mode & 0o777 == 0o600
    values = read_env_file(env)
    assert values == {"OTHER": "1", "LABEL_STUDIO_URL": "http://127.0.0.1:1",
                      "LABEL_STUDIO_API_KEY": "k"}
    assert env.read_text().startswith("# mine\n")


def test_serialised_task_is_the_json_of_the_plain_prediction(tmp_path):
    from annotate.studio.tasks import prediction_from_preannotation, serialise
    from catalog.brush_rle import ints_json

    assert ints_json(np.array([0, 7, 42, 255], np.uint8)) == b"[0,7,42,255]"
    mask = np.zeros((40, 30), np.uint8)
    mask[5:9, 3:20] = 255
    from PIL import Image

    Image.fromarray(mask, mode="L").save(tmp_path / "mask_text.png")
    pre = {"schema": 1, "page_id": "p", "width": 30, "height": 40,
           "regions": [{"label": "main", "bbox": [1, 2, 3, 4], "score": 0.9, "source": "x"}],
           "masks": {"text": "mask_text.png"}, "meta": {"version": "v7"}}
    task = {"data": {"image": "/data/local-files/?d=p/screenshot.png", "page_id": "p"}}
    body = json.loads(serialise(task, tmp_path, pre))
    assert body == {**task, "predictions": [prediction_from_preannotation(pre, tmp_path)]}
    assert body["predictions"][0]["model_version"] == "v7"


def test_unreachable_server_is_retried_then_one_clear_line():
    from annotate.studio import server
    from annotate.studio.client import StudioClient, StudioUnavailable
    from annotate.studio.env import Credentials

    waits = []
    port = server.free_port()  # nothing listens there
    client = StudioClient(Credentials(f"http://127.0.0.1:{port}", "k", ""), retries=3,
                          backoff=0.5, sleep=waits.append)
    with pytest.raises(StudioUnavailable) as err:
        client.get("/api/projects")
    assert waits == [0.5, 1.0, 2.0]
    message = str(err.value)
    assert "\n" not in message and "make labelstudio" in message and "after 3 retries" in message


def _report_page(tmp_path):
    """A workspace with one annotated page: header kept, main moved, footer deleted,
    sidebar added; text mask changed, image mask untouched."""
    from PIL import Image

    from catalog.workspace import Workspace

    ws = Workspace(tmp_path / "ws").ensure()
    pid = "p1"
    ws.page_dir(pid).mkdir()
    Image.new("RGB", (640, 400), "white").save(ws.screenshot(pid))
    text = np.zeros((400, 640), np.uint8)
    text[100:120, 20:300] = 255
    image = np.zeros((400, 640), np.uint8)
    image[200:260, 20:120] = 255
    for name, arr in (("pre_text.png", text), ("pre_image.png", image),
                      ("ann_image.png", image)):
        Image.fromarray(arr).save(ws.page_dir(pid) / name)
    edited = text.copy()
    edited[130:150, 20:300] = 255
    Image.fromarray(edited).save(ws.page_dir(pid) / "ann_text.png")
    region = lambda label, bbox: {"label": label, "bbox": bbox, "score": 0.5}  # noqa: E731
    pre = {"schema": 1, "page_id": pid, "width": 640, "height": 400,
           "regions": [region("header", [0, 0, 640, 50]), region("main", [0, 60, 640, 200]),
                       region("footer", [0, 350, 640, 40])],
           "masks": {"text": "pre_text.png", "image": "pre_image.png"}}
    ann = {**pre, "regions": [region("header", [0, 0, 640, 50]),
                              region("main", [0, 70, 640, 200]),
                              region("sidebar", [500, 60, 140, 200])],
           "masks": {"text": "ann_text.png", "image": "ann_image.png"}}
    ws.preannotation_json(pid).write_text(json.dumps(pre))
    ws.annotation_json(pid).write_text(json.dumps(ann))
    return ws


def test_report_keeps_mask_classes_out_of_the_region_table_and_explains_its_columns(tmp_path):
    from annotate.studio.report import build_report, render

    ws = _report_page(tmp_path)
    report = build_report(ws, ["header", "main", "sidebar", "footer"], ["text", "image"])
    table = render(report)
    region_part, mask_part = table.split("element masks")
    # Regions: each state counted once; mask classes are not rows of proposals.
    assert "text" not in region_part.split("\n\n")[1] and "image" not in region_part
    rows = {line.split()[0]: line.split()[1:] for line in region_part.splitlines()[3:] if line}
    assert rows["header"][:2] == ["1", "100%"]
    assert rows["main"][:3] == ["1", "0%", "100%"]
    assert rows["footer"][:4] == ["1", "0%", "0%", "100%"]
    assert rows["sidebar"][0] == "0" and rows["sidebar"][4] == "1"
    # Masks: pages compared and changed, not "proposed 0".
    masks = {line.split()[0]: line.split()[1:] for line in mask_part.splitlines()[2:4]}
    assert masks["text"][:2] == ["1", "1"] and float(masks["text"][2]) < 1.0
    assert masks["image"] == ["1", "0", "1.00"]
    assert "kept: the proposed box left as it was" in table
    assert "1.00 = untouched" in table


def test_change_sheet_colours_each_region_by_what_became_of_it_under_a_legend(tmp_path):
    from PIL import Image

    from annotate.studio.sheet import LEGEND_HEIGHT, STATE_COLORS, change_sheet

    ws = _report_page(tmp_path)
    out = tmp_path / "sheet.png"
    assert change_sheet(ws, out) == 1
    sheet = np.asarray(Image.open(out).convert("RGB"))
    # The tile is the 640 px page at half size, below the legend.
    def at(x, y):
        return tuple(int(v) for v in sheet[LEGEND_HEIGHT + y, x])

    assert at(160, 25) == STATE_COLORS["kept"]  # header's bottom edge
    assert at(100, 35) == STATE_COLORS["moved"]  # main's final top edge
    assert at(200, 175) == STATE_COLORS["deleted"]  # footer's top edge
    assert at(250, 80) == STATE_COLORS["added"]  # sidebar's left edge
    legend = sheet[:LEGEND_HEIGHT]
    for color in STATE_COLORS.values():
        assert (legend == np.array(color, np.uint8)).all(axis=-1).any()


def test_stop_returns_only_when_every_process_of_the_server_has_exited(tmp_path):
    """A worker that takes a moment over SIGTERM outlives the leader: stop waits for it."""
    import subprocess
    import time
    from pathlib import Path

    from annotate.studio import server

    marker = tmp_path / "worker-exited"
    # The leader dies at once on SIGTERM; its worker finishes its work first (0.8 s).
    script = (f"(trap 'sleep 0.8; touch {marker}; exit 0' TERM; "
              "while :; do sleep 0.05; done) & exec sleep 60")
    proc = subprocess.Popen(["sh", "-c", script], start_new_session=True)
    time.sleep(0.3)
    (tmp_path / server.STATE_FILE).write_text(
        json.dumps({"pid": proc.pid, "url": "http://127.0.0.1:9", "port": 9})
    )
    assert server.stop(tmp_path, quiet=True) is True
    assert marker.exists(), "stop returned while a process of the server was still running"
    left = [p for p in Path("/proc").glob("[0-9]*/stat")
            if p.exists() and f" {proc.pid} " in p.read_text().rpartition(")")[2][:40]
            and p.read_text().rpartition(")")[2].split()[0] != "Z"]
    assert left == []
