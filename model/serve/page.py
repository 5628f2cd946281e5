"""The page for people: one static HTML file, its script and style, no build step."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, send_from_directory

STATIC = Path(__file__).resolve().parent / "static"
page = Blueprint("page", __name__)


@page.get("/")
def index():
    return send_from_directory(STATIC, "index.html")


@page.get("/static/<path:name>")
def static_file(name: str):
    return send_from_directory(STATIC, name)
