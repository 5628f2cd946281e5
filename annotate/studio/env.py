"""Where the Label Studio client finds its server and key: the environment, then `.env`.

The names are the SDK's (`LABEL_STUDIO_URL`, `LABEL_STUDIO_API_KEY`). The `.env` file at
the repository root is git-ignored and written with mode 0600; it is the only place the
pipeline ever writes a credential.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

URL_VAR = "LABEL_STUDIO_URL"
KEY_VAR = "LABEL_STUDIO_API_KEY"
USER_VAR = "LABEL_STUDIO_USERNAME"
PASSWORD_VAR = "LABEL_STUDIO_PASSWORD"
# The server's local-files document root: task image paths are relative to it.
ROOT_VAR = "LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT"
DEFAULT_ENV_FILE = Path(".env")
# Commands run from elsewhere still find the repository's .env.
REPO_ENV_FILE = Path(__file__).resolve().parents[2] / ".env"


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines (comments and blank lines skipped; optional quotes removed)."""
    values: dict[str, str] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return values
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def update_env_file(path: Path, updates: dict[str, str]) -> None:
    """Set keys in an env file, keeping its other lines; the file is private (0600)."""
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    pending = dict(updates)
    out = []
    for line in lines:
        key = line.partition("=")[0].strip()
        if "=" in line and not line.lstrip().startswith("#") and key in pending:
            out.append(f"{key}={pending.pop(key)}")
        else:
            out.append(line)
    out.extend(f"{k}={v}" for k, v in pending.items())
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write("\n".join(out) + "\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def lookup(name: str, env_file: Path = DEFAULT_ENV_FILE) -> str:
    """A setting from the environment, else from the env file (./.env, then the
    repository's), else ''."""
    value = os.environ.get(name)
    if value:
        return value
    for path in (env_file, REPO_ENV_FILE):
        value = read_env_file(path).get(name, "")
        if value:
            return value
    return ""


def redact(text: str, secret: str) -> str:
    """`text` with the secret blanked: a server or proxy may echo a request's headers
    back in an error page, and the error is printed."""
    return text.replace(secret, "***") if secret else text


@dataclass(frozen=True)
class Credentials:
    url: str
    api_key: str
    document_root: str  # may be '' when unknown

    def __repr__(self) -> str:  # never print the key
        return f"Credentials(url={self.url!r}, api_key=***)"


def client_credentials(env_file: Path = DEFAULT_ENV_FILE) -> Credentials:
    url = lookup(URL_VAR, env_file)
    key = lookup(KEY_VAR, env_file)
    if not url or not key:
        missing = URL_VAR if not url else KEY_VAR
        raise ValueError(
            f"{missing} is not set: run `make labelstudio` (it writes .env) or export "
            f"{URL_VAR} and {KEY_VAR}"
        )
    return Credentials(url.rstrip("/"), key, lookup(ROOT_VAR, env_file))
