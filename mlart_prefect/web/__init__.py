"""The artifacts web view (FastAPI and Jinja2), started by ``mlart ui``."""

from __future__ import annotations

__all__ = ["create_app"]


def __getattr__(name: str) -> object:
    # Importing FastAPI takes about 0.3 s, so the application module loads on first use.
    if name == "create_app":
        from mlart_prefect.web.app import create_app

        return create_app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
