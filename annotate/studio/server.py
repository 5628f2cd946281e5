"""Run Label Studio in the background: `python -m annotate.studio.server start|stop|status`.

The server lives in its own virtual environment (`.venv-labelstudio`, so that its pinned
dependencies never constrain ours), listens on 127.0.0.1 only, and keeps its data under the
dataset root (`<root>/.labelstudio/`). The first start creates the admin user and an API
token; both go to the git-ignored `.env` (mode 0600) and nowhere else. Starting again reuses
a running server, and a restart keeps the data.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from catalog.cli import run_main
from catalog.config import load_config
from catalog.processes import group_running, process_alive, reap, signal_group, stop_groups

from .env import (
    DEFAULT_ENV_FILE,
    KEY_VAR,
    PASSWORD_VAR,
    ROOT_VAR,
    URL_VAR,
    USER_VAR,
    read_env_file,
    redact,
    update_env_file,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_BIN = REPO_ROOT / ".venv-labelstudio" / "bin" / "label-studio"
BIN_VAR = "LABEL_STUDIO_BIN"  # another install of label-studio (CI may put it elsewhere)
STATE_FILE = "server.json"
LOG_FILE = "server.log"
DEFAULT_USER = "admin@webseg.local"
# Label Studio reads these bare names too (USERNAME, PASSWORD, PORT, HOST): a login shell's
# USERNAME would silently become the admin account.
_SCRUBBED = {"USERNAME", "PASSWORD", "PORT", "HOST"}


@dataclass
class ServerInfo:
    url: str
    pid: int
    data_dir: Path
    started: bool  # False when a running server was reused


def healthy(url: str, timeout: float = 2.0) -> bool:
    try:
        resp = requests.get(f"{url}/health", timeout=timeout)
        return resp.status_code == 200
    except requests.RequestException:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_state(data_dir: Path) -> dict | None:
    try:
        return json.loads((data_dir / STATE_FILE).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def running(data_dir: Path) -> ServerInfo | None:
    """The server recorded for this data dir, if its process is alive."""
    state = read_state(data_dir)
    if state and process_alive(int(state["pid"])):
        return ServerInfo(state["url"], int(state["pid"]), data_dir, started=False)
    return None


def _child_env(data_dir: Path, document_root: Path, first: dict[str, str]) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in _SCRUBBED and not k.startswith(("LABEL_STUDIO_", "HEARTEX_"))
    }
    env.update(
        {
            "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
            "LATEST_VERSION_CHECK": "false",
            "LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED": "true",
            "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT": str(document_root),
            "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
            # The ML backend (`model serve`) listens on 127.0.0.1 beside the server: without
            # these, Label Studio refuses to connect it and drops its webhook.
            "ML_BLOCK_LOCAL_IP": "false",
            "SSRF_PROTECTION_ENABLED": "false",
            "COLLECT_ANALYTICS": "false",
            "SENTRY_DSN": "",
            "FRONTEND_SENTRY_DSN": "",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(first)
    return env


def _credentials(env_file: Path, data_dir: Path) -> tuple[dict[str, str], bool]:
    """(username, password, token) for the server, and whether they are new."""
    stored = read_env_file(env_file)
    key = os.environ.get(KEY_VAR) or stored.get(KEY_VAR, "")
    user = stored.get(USER_VAR) or DEFAULT_USER
    password = stored.get(PASSWORD_VAR, "")
    fresh = not (data_dir / "label_studio.sqlite3").exists()
    if not fresh:
        if not key:
            raise ValueError(
                f"{data_dir} holds a Label Studio database but {KEY_VAR} is neither in the "
                f"environment nor in {env_file}: restore {env_file}, or move {data_dir} away "
                "to start afresh"
            )
        return {"user": user, "password": password, "token": key}, False
    return {
        "user": user,
        "password": password or secrets.token_urlsafe(12),
        "token": key or secrets.token_hex(20),
    }, True


def start(
    port: int = 8080,
    data_dir: Path | None = None,
    document_root: Path | None = None,
    env_file: Path = DEFAULT_ENV_FILE,
    ls_bin: Path | None = None,
    timeout: float = 300.0,
    quiet: bool = False,
) -> ServerInfo:
    """Start (or reuse) the server for a data dir and return once /health answers."""
    config = load_config()
    root = Path(config.dataset.root).resolve()
    data_dir = (data_dir or root / ".labelstudio").resolve()
    document_root = (document_root or root).resolve()
    ls_bin = Path(ls_bin or os.environ.get(BIN_VAR) or DEFAULT_BIN)
    say = (lambda *a: None) if quiet else (lambda *a: print(*a, flush=True))

    current = running(data_dir)
    if current and healthy(current.url):
        say(f"Label Studio is already running at {current.url} (pid {current.pid})")
        _write_client_env(env_file, current.url, document_root, None)
        return current
    if current:
        # Alive but not answering: still starting, or hung. Wait for it rather than
        # starting a second server on the same database.
        if _wait_healthy(current.url, current.pid, timeout):
            _write_client_env(env_file, current.url, document_root, None)
            return current
        raise RuntimeError(
            f"Label Studio (pid {current.pid}) does not answer at {current.url}; "
            f"run `python -m annotate.studio.server stop` and see {data_dir / LOG_FILE}"
        )
    if not ls_bin.exists():
        raise FileNotFoundError(
            f"{ls_bin} is missing: run `make labelstudio-install` (or set {BIN_VAR})"
        )
    creds, fresh = _credentials(env_file, data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    first = {}
    if fresh:
        first = {
            "LABEL_STUDIO_USERNAME": creds["user"],
            "LABEL_STUDIO_PASSWORD": creds["password"],
            "LABEL_STUDIO_USER_TOKEN": creds["token"],
        }
    url = f"http://127.0.0.1:{port}"
    if healthy(url):
        raise RuntimeError(f"port {port} already serves something else; choose another --port")
    if fresh:
        # Saved before the first start: a start that dies halfway through its migrations
        # must not leave a database whose token nobody knows.
        saved = {USER_VAR: creds["user"], PASSWORD_VAR: creds["password"]}
        if not os.environ.get(KEY_VAR):
            saved[KEY_VAR] = creds["token"]
        update_env_file(env_file, saved)
    cmd = [
        str(ls_bin), "start", "--no-browser", "--internal-host", "127.0.0.1",
        "--port", str(port), "--data-dir", str(data_dir),
    ]
    with open(data_dir / LOG_FILE, "ab") as log:
        proc = subprocess.Popen(
            cmd,
            env=_child_env(data_dir, document_root, first),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=data_dir,
            start_new_session=True,  # outlives `make`; stopped through its process group
        )
    state = {"pid": proc.pid, "url": url, "port": port, "started_at": time.time()}
    (data_dir / STATE_FILE).write_text(json.dumps(state))
    say(
        f"starting Label Studio on {url} (data in {data_dir}"
        + ("; first start runs migrations, about 90 s)" if fresh else ")")
    )
    if not _wait_healthy(url, proc.pid, timeout):
        tail = redact((data_dir / LOG_FILE).read_text(errors="replace")[-2000:], creds["token"])
        stop(data_dir, quiet=True)
        raise RuntimeError(f"Label Studio did not start within {timeout:.0f} s; log tail:\n{tail}")
    _write_client_env(env_file, url, document_root, creds["token"])
    info = ServerInfo(url, proc.pid, data_dir, started=True)
    return info


def _write_client_env(env_file: Path, url: str, document_root: Path, token: str | None) -> None:
    """Tell the other commands where the server is, unless the environment already does."""
    updates = {ROOT_VAR: str(document_root)}
    if not os.environ.get(URL_VAR):
        updates[URL_VAR] = url
    if token and not os.environ.get(KEY_VAR):
        updates[KEY_VAR] = token
    update_env_file(env_file, updates)


def _wait_healthy(url: str, pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if healthy(url):
            return True
        if not process_alive(pid):
            return False
        time.sleep(0.5)
    return False


def stop(data_dir: Path | None = None, quiet: bool = False, timeout: float = 20.0) -> bool:
    """Stop the server of a data dir; True if one was running."""
    if data_dir is None:
        data_dir = Path(load_config().dataset.root).resolve() / ".labelstudio"
    state = read_state(data_dir)
    if not state:
        if not quiet:
            print(f"no Label Studio recorded in {data_dir}")
        return False
    pid = int(state["pid"])
    was_running = group_running(pid)
    # The server's workers share its process group and can outlive it by seconds:
    # stopped means every one of them has exited (the port and the database are free).
    if was_running and not stop_groups([pid], timeout):
        raise RuntimeError(
            f"Label Studio (process group {pid}) did not exit after SIGKILL: "
            f"see `ps -g {pid}`"
        )
    (data_dir / STATE_FILE).unlink(missing_ok=True)
    if not quiet:
        print("Label Studio stopped" if was_running else "Label Studio was not running")
    return was_running


def kill(data_dir: Path) -> None:
    """SIGKILL the server (what a crash looks like); the state file stays, as after a crash."""
    state = read_state(data_dir)
    if state:
        pid = int(state["pid"])
        signal_group(pid, signal.SIGKILL)
        for _ in range(50):
            reap(pid)
            if not process_alive(pid):
                break
            time.sleep(0.1)


def status(data_dir: Path | None = None) -> int:
    if data_dir is None:
        data_dir = Path(load_config().dataset.root).resolve() / ".labelstudio"
    info = running(data_dir)
    if info is None:
        print(f"Label Studio is not running (data dir {data_dir})")
        return 1
    state = "answering" if healthy(info.url) else "not answering"
    print(f"Label Studio is running at {info.url} (pid {info.pid}, {state})")
    return 0 if state == "answering" else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m annotate.studio.server", description=__doc__)
    parser.add_argument("command", choices=["start", "stop", "status"])
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="server data (default: <dataset root>/.labelstudio)")
    parser.add_argument("--document-root", type=Path, default=None,
                        help="local files the server may serve (default: the dataset root)")
    parser.add_argument("--env-file", type=Path, default=DEFAULT_ENV_FILE)
    parser.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args(argv)
    if args.command == "stop":
        stop(args.data_dir)
        return 0
    if args.command == "status":
        return status(args.data_dir)
    try:
        info = start(args.port, args.data_dir, args.document_root, args.env_file,
                     timeout=args.timeout)
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    user = read_env_file(args.env_file).get(USER_VAR, "")
    print(f"Label Studio: {info.url}")
    if user:
        print(f"log in as {user}; the password is {PASSWORD_VAR} in {args.env_file}")
    else:
        print(f"log in with the account whose key is {KEY_VAR} in the environment")
    print("stop it with `make labelstudio-stop`")
    return 0


if __name__ == "__main__":
    run_main(main)
