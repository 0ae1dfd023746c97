"""What every answer tells the browser about itself, and text made safe for a header.

Every response carries ``X-Content-Type-Options: nosniff`` (a JSON answer or a PDF is never
run as a script or shown as a page). An HTML page also carries a Content-Security-Policy that
allows scripts and style sheets from the service itself only, plus the inline style blocks
named by their SHA-256 (the printable report's), no framing, no referrer, and, when the
service is public over https, HSTS. The header lists are built once, when the application is
made, so that the QR page pays for one list concatenation per request.
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from verify.html import _STYLE as REPORT_STYLE

#: The pages' templates and the service's own scripts (served at :data:`STATIC_PATH`).
WEB_DIR = Path(__file__).parent.parent / "econtract" / "web"
STATIC_DIR = WEB_DIR / "static"
STATIC_PATH = "/static"

_STYLE_BLOCK = re.compile(r"<style>(.*?)</style>", re.DOTALL)


def _inline_styles() -> tuple[str, ...]:
    # The QR page keeps its style inline, so that a phone gets it in one request; its block
    # is plain text in the template, rendered byte for byte. The report's block is also
    # moved into the upload page when it shows a verdict.
    blocks = [REPORT_STYLE]
    for template in sorted(WEB_DIR.glob("*.html")):
        blocks.extend(_STYLE_BLOCK.findall(template.read_text(encoding="utf-8")))
    return tuple(blocks)


#: Inline ``<style>`` blocks the pages may carry, allowed by their hashes.
INLINE_STYLES = _inline_styles()

_UNSAFE = re.compile(r"[^\x20-\x7e]+")
_HEADER_TEXT_LIMIT = 200


def header_text(text: str) -> str:
    """``text`` made fit for an HTTP header value: printable ASCII on one line, at most 200
    characters. A control character (a newline above all) in a header makes the server drop
    the connection, or would split the header; a character beyond Latin-1 cannot be encoded.
    """
    flat = " ".join(_UNSAFE.sub(" ", text).split())
    if len(flat) > _HEADER_TEXT_LIMIT:
        flat = flat[: _HEADER_TEXT_LIMIT - 1] + "~"
    return flat


def style_hash(css: str) -> str:
    """The CSP source expression that allows exactly the inline style block ``css``."""
    digest = base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
    return f"'sha256-{digest}'"


def content_security_policy() -> str:
    """The policy of every page: nothing inline runs; only the listed style blocks apply."""
    styles = " ".join(style_hash(css) for css in INLINE_STYLES)
    return "; ".join(
        (
            "default-src 'none'",
            "script-src 'self'",
            f"style-src 'self' {styles}",
            # Swagger UI draws its icons as data: images; the report links its PDF as data:.
            "img-src 'self' data:",
            "font-src 'self'",
            "connect-src 'self'",
            "form-action 'self'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        )
    )


def _pairs(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]


class SecurityHeaders:
    """Add the security headers to every answer (an ASGI middleware).

    A header the route set itself is kept; the policy is added to ``text/html`` answers only.
    """

    def __init__(self, app: ASGIApp, *, https: bool) -> None:
        self.app = app
        every = {"X-Content-Type-Options": "nosniff"}
        if https:
            # Only over https: a browser ignores HSTS sent over plain HTTP anyway, and a
            # development server on http://127.0.0.1 must stay reachable.
            every["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
        pages = {
            "Content-Security-Policy": content_security_policy(),
            "X-Frame-Options": "DENY",
            "Referrer-Policy": "no-referrer",
        }
        self._every = _pairs(every)
        self._html = [*self._every, *_pairs(pages)]
        self._every_names = frozenset(name for name, _ in self._every)
        self._html_names = frozenset(name for name, _ in self._html)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                if _is_html(headers):
                    extra, names = self._html, self._html_names
                else:
                    extra, names = self._every, self._every_names
                if present.isdisjoint(names):
                    headers += extra  # the usual case: the route set none of them
                else:
                    headers.extend(pair for pair in extra if pair[0] not in present)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _is_html(headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name.lower() == b"content-type":
            return value.lower().startswith(b"text/html")
    return False
