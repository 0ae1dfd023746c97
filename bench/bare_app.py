"""The baseline of the QR page benchmark: a bare FastAPI endpoint returning constant JSON.

Served as the project is (uvicorn, the same number of workers, no access log, no server
header) by :func:`bench.load.bare_server`::

    .venv/bin/uvicorn bench.bare_app:app --workers 2 --no-access-log --no-server-header

The route is FastAPI's first documented example: an ``async def`` returning a small dict.
"""

from __future__ import annotations

from fastapi import FastAPI

app = FastAPI()


@app.get("/bare")
async def bare() -> dict[str, str]:
    """A constant small JSON document."""
    return {"status": "ok", "service": "bare"}
