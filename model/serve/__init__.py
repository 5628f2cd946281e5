"""`python -m model serve`: the preview page for people, the JSON API and Label Studio's ML
backend API, in one Flask application run by waitress on 127.0.0.1."""

from .app import ServeConfig, create_app

__all__ = ["ServeConfig", "create_app"]
