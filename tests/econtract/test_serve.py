"""`econtract serve --workers 2`: starts, answers, spreads connections opened at once over both
workers, replaces a worker that dies, stops every worker on SIGTERM; /metrics counts across
both workers, and every worker shows a status change made by another process at once.

Which worker serves a connection is read from ``/proc`` (the process holding the server's end
of the connection), so that the service needs no header or route for the tests.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from econtract.certificates import change_status
from econtract.config import Settings
from econtract.metrics import FLUSH_SECONDS
from econtract.services import Services
from tests.factories import OPERATOR
from tests.licences import issue_example, qr_token
from tests.live import free_port

ECONTRACT = str(Path(sys.executable).with_name("econtract"))
PASSPHRASE = "test-passphrase-0123"


@dataclass(frozen=True)
class Served:
    """A running ``econtract serve --workers 2``."""

    base: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    """Its stderr: JSON lines, at level INFO."""
    settings: Settings

    def ready_workers(self) -> int:
        """How many times a worker told the supervisor it serves."""
        return self.log.read_text(encoding="utf-8").count('"worker ready"')


@contextlib.contextmanager
def serving_two_workers(tmp_path: Path) -> Iterator[Served]:
    """``econtract serve --workers 2`` on a fresh data directory, once both workers serve."""
    port = free_port()
    env = {
        **os.environ,
        "ECONTRACT_DATA_DIR": str(tmp_path / "var"),
        "ECONTRACT_KEY_PASSPHRASE": PASSPHRASE,
        "ECONTRACT_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        # The supervisor says at INFO when a worker is ready.
        "ECONTRACT_LOG_LEVEL": "INFO",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.pop("ECONTRACT_DATABASE_URL", None)
    log = tmp_path / "server.log"
    with log.open("wb") as log_file:
        server = subprocess.Popen(
            [ECONTRACT, "serve", "--port", str(port), "--workers", "2"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=log_file,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    settings = Settings(
        _env_file=None, data_dir=tmp_path / "var", key_passphrase=PASSPHRASE, public_base_url=base
    )
    served = Served(base=base, port=port, process=server, log=log, settings=settings)
    try:
        wait_for(lambda: served.ready_workers() == 2, "both workers to be ready", server)
        wait_for(lambda: _answers(f"{base}/readyz"), "the service to be ready", server)
        yield served
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)


def wait_for(
    condition: Callable[[], bool], what: str, server: subprocess.Popen[bytes], limit: float = 300
) -> None:
    """Wait until ``condition`` holds, or fail saying ``what`` did not happen."""
    deadline = time.monotonic() + limit
    while not condition():
        assert server.poll() is None, f"the server stopped while waiting for {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[tuple[str, Settings]]:
    """``econtract serve --workers 2`` on a fresh data directory: its URL and settings."""
    with serving_two_workers(tmp_path) as served:
        yield served.base, served.settings


# --- which process serves a connection (Linux /proc) ----------------------------------------


def worker_pids(parent: int) -> set[int]:
    """The worker processes of the supervisor ``parent`` (not multiprocessing's tracker)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            # "pid (name) state ppid ...": the name may hold spaces and parentheses.
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
            if int(fields[1]) == parent and b"spawn_main" in cmdline and fields[0] != "Z":
                found.add(int(stat.parent.name))
    return found


def serving_process(connection: http.client.HTTPConnection, pids: set[int]) -> int:
    """Which of ``pids`` holds the server's end of ``connection``."""
    assert connection.sock is not None
    client_port = connection.sock.getsockname()[1]
    server_port = connection.sock.getpeername()[1]
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            columns = line.split()
            local, remote = (int(a.rsplit(":", 1)[1], 16) for a in columns[1:3])
            if (local, remote) == (server_port, client_port):
                inodes.add(f"socket:[{columns[9]}]")
    assert len(inodes) == 1, f"no one server end of port {client_port}: {inodes}"
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                if os.readlink(fd) in inodes:
                    return pid
    raise AssertionError(f"no worker holds the connection from port {client_port}")


@contextlib.contextmanager
def connections_served(
    served: Served, count: int
) -> Iterator[list[tuple[http.client.HTTPConnection, int]]]:
    """Open ``count`` keep-alive connections at once and make a request on each; yield each
    connection with the worker that serves it, and close them on leaving."""
    connections = [http.client.HTTPConnection("127.0.0.1", served.port) for _ in range(count)]
    try:
        for connection in connections:
            connection.connect()
        for connection in connections:
            connection.request("GET", "/healthz")
        for connection in connections:
            response = connection.getresponse()
            response.read()
            assert response.status == 200
            assert not response.will_close
        pids = worker_pids(served.process.pid)
        yield [(connection, serving_process(connection, pids)) for connection in connections]
    finally:
        for connection in connections:
            connection.close()


def serve_on_new_connections(served: Served, count: int) -> Counter[int]:
    """How many of ``count`` keep-alive connections opened at once each worker serves."""
    with connections_served(served, count) as pairs:
        return Counter(pid for _, pid in pairs)


def _established(ports: set[int]) -> bool:
    """Whether any TCP connection from one of the client ``ports`` is still established."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            columns = line.split()
            remote = int(columns[2].rsplit(":", 1)[1], 16)
            if remote in ports and columns[3] == "01":
                return True
    return False


def _gone(pid: int) -> bool:
    """Whether ``pid`` has ended: its main thread is a zombie (its other threads may still be
    exiting, and its descriptors open until the last of them has)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


@pytest.mark.slow
def test_connections_opened_at_once_are_spread_over_both_workers(tmp_path: Path) -> None:
    with serving_two_workers(tmp_path) as served:
        split = serve_on_new_connections(served, 8)
        assert len(split) == 2, split
        assert max(split.values()) - min(split.values()) <= 2, split


@pytest.mark.slow
def test_new_connections_go_to_the_worker_with_the_fewest_open(tmp_path: Path) -> None:
    with serving_two_workers(tmp_path) as served, connections_served(served, 8) as first:
        split = Counter(pid for _, pid in first)
        assert len(split) == 2, split
        freed = min(split)
        closed = {c.sock.getsockname()[1] for c, pid in first if pid == freed and c.sock}
        for connection, pid in first:
            if pid == freed:
                connection.close()
        wait_for(lambda: not _established(closed), "the worker to close", served.process)
        # The other worker still holds its connections: the freed one gets the new ones (all
        # of them, unless a close is told to the supervisor after the next connection). A
        # worker tells of each close after the kernel has closed the socket, so on a busy
        # machine the supervisor may still count some: ask again until it has heard them.
        deadline = time.monotonic() + 20
        split = serve_on_new_connections(served, len(closed))
        while split[freed] < len(closed) - 1 and time.monotonic() < deadline:
            time.sleep(0.5)
            split = serve_on_new_connections(served, len(closed))
        assert split[freed] >= len(closed) - 1, split


@pytest.mark.slow
def test_a_worker_that_dies_is_replaced_and_the_service_keeps_answering(tmp_path: Path) -> None:
    with serving_two_workers(tmp_path) as served:
        parent = served.process.pid
        first = worker_pids(parent)
        assert len(first) == 2
        victim, survivor = sorted(first)
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: _gone(victim), "the worker to die", served.process)
        # Meanwhile the other worker answers every new connection.
        with httpx.Client(headers={"Connection": "close"}) as client:
            for _ in range(10):
                assert client.get(f"{served.base}/healthz").status_code == 200
        wait_for(lambda: served.ready_workers() == 3, "a new worker", served.process)
        now = worker_pids(parent)
        assert survivor in now
        assert len(now) == 2
        assert victim not in now
        # The new worker takes its share of new connections.
        assert set(serve_on_new_connections(served, 8)) == now
        assert "a worker died; starting another" in served.log.read_text(encoding="utf-8")


@pytest.mark.slow
def test_connections_handed_to_a_worker_that_dies_before_taking_them_are_served_by_another(
    tmp_path: Path,
) -> None:
    with serving_two_workers(tmp_path) as served:
        victim, survivor = sorted(worker_pids(served.process.pid))
        # A stopped worker is still ready for the supervisor: it is handed its share of new
        # connections, which wait in its channel, untaken.
        os.kill(victim, signal.SIGSTOP)
        clients = [
            http.client.HTTPConnection("127.0.0.1", served.port, timeout=60) for _ in range(4)
        ]
        for client in clients:
            client.request("GET", "/healthz")
        time.sleep(0.5)
        os.kill(victim, signal.SIGKILL)
        # Every request is answered: those handed to the dead worker were handed again.
        for client in clients:
            response = client.getresponse()
            assert response.status == 200
            response.read()
        assert all(serving_process(client, {survivor}) == survivor for client in clients)
        for client in clients:
            client.close()
        assert "handed again" in served.log.read_text(encoding="utf-8")


@pytest.mark.slow
def test_sigterm_stops_every_worker(tmp_path: Path) -> None:
    with serving_two_workers(tmp_path) as served:
        workers = worker_pids(served.process.pid)
        assert len(workers) == 2
        # An idle keep-alive connection does not hold the shutdown up.
        idle = http.client.HTTPConnection("127.0.0.1", served.port)
        idle.request("GET", "/healthz")
        idle.getresponse().read()
        served.process.send_signal(signal.SIGTERM)
        assert served.process.wait(timeout=60) == 0
        assert all(_gone(pid) for pid in workers)
        idle.close()


def test_two_workers_share_their_metrics(two_workers: tuple[str, Settings]) -> None:
    base, _ = two_workers
    with httpx.Client() as client:
        for _ in range(40):
            assert client.get(f"{base}/healthz", headers={"Connection": "close"}).status_code == 200
    counter = r'econtract_http_requests_total\{method="GET",route="/healthz",status="200"\}'
    # Each worker adds its answers to the shared metrics at most FLUSH_SECONDS after them.
    deadline = time.monotonic() + 3 * FLUSH_SECONDS + 5
    while True:
        text = httpx.get(f"{base}/metrics").text
        match = re.search(counter + r" ([0-9.]+)", text)
        assert match is not None, text[:2000]
        if float(match[1]) >= 40 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert float(match[1]) >= 40


def test_every_worker_shows_a_status_change_at_once(two_workers: tuple[str, Settings]) -> None:
    """The QR page's remembered answers are dropped by a write from another process."""
    base, settings = two_workers
    services = Services(settings=settings)
    try:
        certificate = issue_example(services)
        token = qr_token(services, certificate)

        def verdicts(count: int = 30) -> set[str]:
            # A new connection per request, so that both workers answer (and remember).
            return {
                httpx.get(
                    f"{base}/v/{token}",
                    headers={"Accept": "application/json", "Connection": "close"},
                ).json()["verdict"]
                for _ in range(count)
            }

        assert verdicts() == {"VALID"}
        for action, expected in (("suspend", "SUSPENDED"), ("reinstate", "VALID")):
            change_status(
                services,
                certificate_id=certificate.id,
                action=action,
                reason="test",
                actor=OPERATOR,
            )
            assert verdicts() == {expected}
        # The HTML page as well (it is rendered from the same remembered answer).
        change_status(
            services, certificate_id=certificate.id, action="revoke", reason="test", actor=OPERATOR
        )
        for _ in range(10):
            page = httpx.get(f"{base}/v/{token}", headers={"Connection": "close"}).text
            assert "REVOKED" in page
            assert "已撤销" in page
    finally:
        services.dispose()
