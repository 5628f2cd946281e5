"""Connect a project to an ML backend (`model serve`) through Label Studio's API, and let the
tasks the model is least sure of come first. The backend is reached only over HTTP: Label
Studio asks it for predictions, and its /health says which model version answers."""

from __future__ import annotations

from dataclasses import dataclass

import requests

from .client import StudioClient

TITLE = "model serve"
PREDICT_BATCH = 8


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
    registers its /webhook), have Label Studio ask it for a prediction of every task that
    lacks one of its model version, and show those in the labelling UI. (Label Studio asks
    a backend by itself only for tasks without any prediction, and pushed tasks have the
    DOM pre-annotation.)"""
    url = url.rstrip("/")
    version = backend_health(url).get("model_version", "")
    have = client.get("/api/ml", project=project_id) or []
    mine = [b for b in have if b.get("url", "").rstrip("/") == url]
    if mine:
        backend, created = mine[0], False
    else:
        backend = client.request("POST", "/api/ml", json_body={
            "project": project_id, "url": url, "title": TITLE, "is_interactive": False})
        created = True
    # A few tasks per request: Label Studio sends them to /predict in one call and gives
    # up on it after 100 s (ML_TIMEOUT_PREDICT); the backend answers a task in seconds.
    ids = [int(t["id"]) for t in client.iter_tasks(project_id)]
    for k in range(0, len(ids), PREDICT_BATCH):
        client.request(
            "POST", "/api/dm/actions", params={"id": "retrieve_tasks_predictions",
                                               "project": project_id},
            json_body={"selectedItems": {"all": False, "included": ids[k:k + PREDICT_BATCH]}})
    client.request("PATCH", f"/api/projects/{project_id}", json_body={"model_version": version})
    return Connected(int(backend["id"]), version, created, len(ids))


def order_by_uncertainty(client: StudioClient, project_id: int) -> None:
    """Serve tasks lowest score first: Label Studio ranks the stored predictions of the
    project's model version (the backend's, after `connect`)."""
    client.request("PATCH", f"/api/projects/{project_id}",
                   json_body={"sampling": "Uncertainty sampling"})
