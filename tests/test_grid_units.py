"""A Grid's free slots read from its /status, and the node configuration `make grid` writes."""

from __future__ import annotations

import tomllib

from scraper.grid import hub_toml, node_toml
from scraper.slots import parse_status


def _node(availability: str, *sessions: object) -> dict:
    return {"availability": availability,
            "slots": [{"session": s, "stereotype": {"browserName": "chrome"}} for s in sessions]}


def test_free_slots_count_only_idle_slots_on_nodes_that_are_up() -> None:
    status = {"ready": True, "nodes": [_node("UP", None, {"sessionId": "a"}),
                                       _node("DOWN", None), _node("UP", None)]}
    slots = parse_status(status)
    assert (slots.total, slots.free, slots.nodes_up, slots.is_grid) == (3, 2, 2, True)


def test_a_full_grid_has_no_free_slot() -> None:
    slots = parse_status({"ready": True, "nodes": [_node("UP", {"sessionId": "a"})]})
    assert (slots.total, slots.free) == (1, 0)


def test_a_bare_chromedriver_is_one_slot_while_ready() -> None:
    assert parse_status({"ready": True, "message": "ChromeDriver ready"}).free == 1
    assert parse_status({"ready": False, "message": "busy"}).free == 0


def test_nodes_drive_debians_chromium_one_session_each_with_a_short_heartbeat() -> None:
    node = tomllib.loads(node_toml("127.0.0.1", 5555, "127.0.0.1", (4442, 4443), 1))["node"]
    assert node["detect-drivers"] is False and node["max-sessions"] == 1
    assert node["heartbeat-period"] <= 5
    (driver,) = node["driver-configuration"]
    assert driver["webdriver-executable"] == "/usr/bin/chromedriver"
    assert '"binary": "/usr/bin/chromium"' in driver["stereotype"]
    hub = tomllib.loads(hub_toml("127.0.0.1", 4444, (4442, 4443)))
    assert hub["distributor"]["healthcheck-interval"] <= 5
    assert hub["server"]["host"] == "127.0.0.1"
