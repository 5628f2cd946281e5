"""Connect a project to an ML backend (`model serve`) through Label Studio's API, and let the
tasks the model is least sure of come first. The backend is reached only over HTTP: Label
Studio asks it for predictions, and its /health says which model version answers."""

from __future__ import annotations

from dataclasses import dataclass

import requests

from .client import StudioClient

TITLE = "model serve"


@dataclass
class Connected:
    backend_id: int
    model_version: str
    created: bool
    predicted: int = 0


def backend_health(url: str) -> dict:
    try:
        r = requests.get(url.rstrip("/") + "/health", timeout=10)
        r.raise_for_status()
        return r.json()
    except (requests.RequestException, ValueError) as exc:
        raise ValueError(f"the ML backend at {url} does not answer /health ({exc}): start it "
                         "with `make app` (python -m model serve) first") from None


def connect(client: StudioClient, project_id: int, url: str) -> Connected:
    """Add the backend to the project once (Label Studio checks its /health and /setup and
    registers its /webhook), and make it the project's live model, whose predictions the
    labelling UI asks for."""
    url = url.rstrip("/")
    version = backend_health(url).get("model_version", "")
    have = client.get("/api/ml", project=project_id) or []
    mine = [b for b in have if b.get("url", "").rstrip("/") == url]
    if mine:  # connected before: the project's choice of predictions stays as it is
        return Connected(int(mine[0]["id"]), version, False)
    backend = client.request("POST", "/api/ml", json_body={
        "project": project_id, "url": url, "title": TITLE, "is_interactive": False})
    client.request("PATCH", f"/api/projects/{project_id}",
                   json_body={"model_version": backend.get("title") or TITLE})
    return Connected(int(backend["id"]), version, True)


def order_by_uncertainty(client: StudioClient, project_id: int, conn: Connected) -> int:
    """Have Label Studio fetch the backend's prediction (with its score) for every task
    that lacks one of this model version, then serve tasks lowest score first (Label
    Studio ranks the stored predictions of the project's model version)."""
    done = client.request(
        "POST", "/api/dm/actions", params={"id": "retrieve_tasks_predictions",
                                           "project": project_id},
        json_body={"selectedItems": {"all": True, "excluded": []}})
    client.request("PATCH", f"/api/projects/{project_id}",
                   json_body={"sampling": "Uncertainty sampling",
                              "model_version": conn.model_version})
    return int((done or {}).get("processed_items", 0))
