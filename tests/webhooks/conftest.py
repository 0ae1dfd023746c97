"""A real HTTP receiver on loopback, and the registry with no worker thread of its own: the
tests drive the rounds, and the time, themselves."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from econtract.config import Settings


@dataclass
class Received:
    """One request the receiver got."""

    path: str
    headers: dict[str, str]
    body: str


@dataclass
class Receiver:
    """An HTTP endpoint that records every POST and answers the statuses it is told to, in
    order, then 200."""

    url: str
    received: list[Received] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The shared settings with the service's own webhook worker off."""
    return settings.model_copy(update={"webhook_poll_seconds": 0})


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A receiver on 127.0.0.1 serving in a thread."""
    state = Receiver(url="")
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length).decode("ascii")
            with lock:
                state.received.append(
                    Received(path=self.path, headers=dict(self.headers.items()), body=body)
                )
                status = state.answers.pop(0) if state.answers else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
