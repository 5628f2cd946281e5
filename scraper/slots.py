"""What a Selenium Grid has room for, read from its `/status`.

A Grid 4 hub lists its nodes with their availability and slots; a slot holding no session
is free. A bare chromedriver answers `/status` too, without nodes: it is taken as one
free slot whenever it says it is ready.
"""

from __future__ import annotations

from dataclasses import dataclass

import requests


@dataclass
class Slots:
    ready: bool
    total: int  # slots on nodes that are up
    free: int
    nodes_up: int
    is_grid: bool  # False: a single driver, not a hub


def parse_status(value: dict) -> Slots:
    """The slots of a `/status` answer's `value`."""
    ready = bool(value.get("ready"))
    if "nodes" not in value:
        return Slots(ready, 1, int(ready), int(ready), is_grid=False)
    total = free = up = 0
    for node in value["nodes"]:
        if node.get("availability") != "UP":
            continue
        up += 1
        for slot in node.get("slots", []):
            total += 1
            free += slot.get("session") is None
    return Slots(ready, total, free, up, is_grid=True)


def grid_slots(url: str, timeout: float = 5.0) -> Slots | None:
    """The Grid's slots, or None when nothing answers at `url`."""
    try:
        resp = requests.get(f"{url.rstrip('/')}/status", timeout=timeout)
        return parse_status(resp.json()["value"])
    except (requests.RequestException, ValueError, KeyError, TypeError):
        return None
