"""A faster reader for PDF hex strings, used while this package parses a file.

pyHanko reads a hex string one byte at a time through Python generators; a seal's
/Contents is a hex string of 10-40 thousand digits, so reading the signature dictionaries
was close to half the time of a whole verification. This reader finds the closing ``>`` in
chunks and decodes with ``binascii``; the result is the same object pyHanko would build
(``generic.pdf_string`` of the decoded bytes), and any hex string it cannot read the fast
way (a comment inside it) goes to pyHanko's own reader.

pyHanko has no hook for this, so :func:`fast_hex_strings` swaps the module-level reader in
``pyhanko.pdf_utils.generic`` once, and the swapped-in function takes the fast path only in
a context that asked for it: other users of pyHanko in the same process (the sealer, a
benchmark's baseline) keep the library's behaviour exactly.
"""

from __future__ import annotations

import binascii
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import IO, Any

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.misc import PDF_WHITESPACE, PdfStreamError

__all__ = ["fast_hex_strings", "read_hex_string"]

_CHUNK = 64 * 1024
_HEX_DIGITS = b"0123456789abcdefABCDEF"
_active: ContextVar[bool] = ContextVar("econtract_fast_hex_strings", default=False)
_install_lock = threading.Lock()
_library_reader: Any = generic.read_hex_string_from_stream
_installed = False


def read_hex_string(stream: IO[bytes]) -> generic.ByteStringObject | generic.TextStringObject:
    """Read the hex string starting at the stream's position (at its ``<``).

    Raises :class:`PdfStreamError` for a character that is neither a hex digit nor
    whitespace, or for a string the stream ends inside, as pyHanko does.
    """
    start = stream.tell()
    stream.read(1)
    parts: list[bytes] = []
    while True:
        chunk = stream.read(_CHUNK)
        if not chunk:
            raise PdfStreamError("Stream ended prematurely")
        end = chunk.find(b">")
        if end >= 0:
            parts.append(chunk[:end])
            stream.seek(end + 1 - len(chunk), 1)
            break
        parts.append(chunk)
    raw = b"".join(parts)
    if b"%" in raw:
        # A comment inside a hex string: rare enough to leave to the library.
        stream.seek(start)
        return _library_reader(stream)  # type: ignore[no-any-return]
    digits = raw.translate(None, PDF_WHITESPACE)
    stray = digits.translate(None, _HEX_DIGITS)
    if stray:
        raise PdfStreamError(f"Unexpected token in hex string: {stray[:1]!r}")
    if len(digits) % 2:
        digits += b"0"
    return generic.pdf_string(binascii.unhexlify(digits))


def _dispatch(stream: IO[bytes]) -> generic.ByteStringObject | generic.TextStringObject:
    if _active.get():
        return read_hex_string(stream)
    return _library_reader(stream)  # type: ignore[no-any-return]


@contextmanager
def fast_hex_strings() -> Iterator[None]:
    """Within this block (in this thread or task), pyHanko reads hex strings the fast way."""
    global _installed  # noqa: PLW0603  # installed once per process
    with _install_lock:
        if not _installed:
            generic.read_hex_string_from_stream = _dispatch
            _installed = True
    token = _active.set(True)
    try:
        yield
    finally:
        _active.reset(token)
