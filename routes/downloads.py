"""Sealed PDFs as responses, streamed from the blob store.

The store hands out a stream, not a path (a store need not be a directory), so a download is a
streaming response that closes the stream when sent, and says its length when the stream
knows it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import BinaryIO
from urllib.parse import quote

from fastapi.responses import StreamingResponse

_CHUNK = 64 * 1024


def pdf_response(
    stream: BinaryIO,
    *,
    filename: str | None = None,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> StreamingResponse:
    """Send ``stream`` as ``application/pdf`` (an attachment named ``filename`` if given) and
    close it once sent."""
    extra = dict(headers or {})
    size = _size_of(stream)
    if size is not None:
        extra["Content-Length"] = str(size)
    if filename is not None:
        extra["Content-Disposition"] = _attachment(filename)
    return StreamingResponse(
        _chunks(stream), status_code=status_code, media_type="application/pdf", headers=extra
    )


def _attachment(filename: str) -> str:
    # As Starlette's FileResponse writes it: RFC 5987 encoding for a name beyond plain ASCII.
    quoted = quote(filename)
    if quoted != filename:
        return f"attachment; filename*=utf-8''{quoted}"
    return f'attachment; filename="{filename}"'


def _size_of(stream: BinaryIO) -> int | None:
    try:
        return os.fstat(stream.fileno()).st_size
    except (OSError, ValueError):
        # Not a file of the operating system: a database store's stream says its size, any
        # other is sent chunked.
        size = getattr(getattr(stream, "raw", None), "size", None)
        return size if isinstance(size, int) else None


def _chunks(stream: BinaryIO) -> Iterator[bytes]:
    try:
        while chunk := stream.read(_CHUNK):
            yield chunk
    finally:
        stream.close()
