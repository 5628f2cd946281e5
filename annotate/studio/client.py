"""A small HTTP client for Label Studio's REST API with the SDK's headers.

The SDK's own calls run every payload through its JSON encoder (`jsonable_encoder`), about
4x slower than `json.dumps` for tasks that carry brush RLE; here bodies are plain POSTs of
bytes serialised once. The SDK still supplies the headers (auth scheme, user agent), so the
server sees the same client either way.

Errors are one line (`StudioError`, a ValueError, which the command line prints as
`error: ...`): a server that does not answer after the retries, a refused key, a request the
server rejects.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import requests

from .env import KEY_VAR, URL_VAR, Credentials, redact

# Answers that mean "not now" rather than "never": the server is restarting or overloaded.
_TRANSIENT = {502, 503, 504}


class StudioError(ValueError):
    """Something about Label Studio the user has to fix; the message says what."""


class StudioUnavailable(StudioError):
    """The server did not answer after every retry."""


class Rejected(StudioError):
    """The server answered and refused the request (4xx, or 500 for an oversized body)."""

    def __init__(self, status: int, detail: str):
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status
        self.detail = detail


def _detail(resp: requests.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:300].strip() or resp.reason
    if isinstance(body, dict):
        parts = [str(body.get("detail") or "")]
        if body.get("validation_errors"):
            parts.append(json.dumps(body["validation_errors"])[:500])
        return " ".join(p for p in parts if p) or json.dumps(body)[:300]
    return json.dumps(body)[:300]


def sdk_headers(url: str, api_key: str) -> dict[str, str]:
    from label_studio_sdk import LabelStudio

    client = LabelStudio(base_url=url, api_key=api_key)
    return dict(client._client_wrapper.get_headers())


class StudioClient:
    def __init__(
        self,
        creds: Credentials,
        retries: int = 5,
        backoff: float = 1.0,
        timeout: float = 300.0,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.url = creds.url
        self.creds = creds
        self.retries = retries
        self.backoff = backoff
        self.timeout = timeout
        self._sleep = sleep
        self.session = requests.Session()
        self.session.headers.update(sdk_headers(creds.url, creds.api_key))

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        data: bytes | None = None,
        before_retry: Callable[[], None] | None = None,
    ) -> Any:
        """Send a request, retrying with doubling waits while the server is unreachable.

        `before_retry` runs before each new attempt (an import checks there what the server
        already took, so that a retry never doubles a task).
        """
        headers = {}
        if json_body is not None:
            data = json.dumps(json_body).encode()
        if data is not None:
            headers["Content-Type"] = "application/json"
        wait = self.backoff
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                self._sleep(wait)
                wait *= 2
                if before_retry is not None:
                    try:
                        before_retry()
                    except StudioUnavailable:
                        continue
            try:
                resp = self.session.request(
                    method, self.url + path, params=params, data=data, headers=headers,
                    timeout=self.timeout,
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                last = type(exc).__name__
                continue
            if resp.status_code in _TRANSIENT:
                last = f"HTTP {resp.status_code}"
                continue
            if resp.status_code in (401, 403):
                raise StudioError(
                    f"Label Studio at {self.url} refused the API key (HTTP {resp.status_code}): "
                    f"set {KEY_VAR} in the environment or .env to a valid access token"
                )
            if resp.status_code >= 400:
                raise Rejected(resp.status_code, redact(_detail(resp), self.creds.api_key))
            if resp.status_code == 204 or not resp.content:
                return None
            return resp.json()
        raise self.unavailable(last, self.retries)

    def unavailable(self, why: str, retries: int) -> StudioUnavailable:
        return StudioUnavailable(
            f"Label Studio at {self.url} did not answer ({why}) after {retries} retries: "
            f"start it with `make labelstudio` (or fix {URL_VAR}), then run the command again; "
            "it resumes where it stopped"
        )

    def get(self, path: str, **params: Any) -> Any:
        return self.request("GET", path, params=params or None)

    def iter_tasks(self, project_id: int, page_size: int = 1000) -> Iterator[dict]:
        """Every task of a project without predictions or results (light on the wire)."""
        page = 1
        seen = 0
        while True:
            body = self.get(
                "/api/tasks", project=project_id, page=page, page_size=page_size,
                fields="task_only",
            )
            tasks = body.get("tasks", []) if isinstance(body, dict) else body
            yield from tasks
            seen += len(tasks)
            total = body.get("total", 0) if isinstance(body, dict) else 0
            if not tasks or seen >= total:
                return
            page += 1
