"""Several worker processes behind one port, each new connection given to the least busy.

``econtract serve --workers N`` (N > 1) runs this supervisor instead of uvicorn's. uvicorn's
workers share one listening socket and race for it: uvloop accepts every pending connection
in one wake-up, so a burst of keep-alive connections (a load balancer's pool, a load
generator) lands on whichever worker woke first, and the other cores idle. A socket per
worker bound with ``SO_REUSEPORT`` lets the kernel hash connections over the workers
instead, but at random: 8 connections split 6/2 or worse about one time in four (measured on
this service's machine), and a worker that hangs keeps getting its share.

So the supervisor accepts, as Node.js's cluster module does by default: the parent process
alone listens, takes each new connection and passes its descriptor (``SCM_RIGHTS`` over a
Unix socket pair per worker) to the ready worker with the fewest open connections, the next
in turn among equals. Each worker tells the parent when it is ready, when it has taken a
connection and when a connection it was given closes, so the counts are exact and a worker
that is restarted, or slow to answer, is given new connections until it carries its share.
The parent keeps its copy of a connection until the worker has taken it: a connection handed
to a worker that dies before taking it (it waited in the worker's channel) is handed to
another worker instead of being reset. Accepting costs the parent a few system
calls per connection; the connections are long-lived, and the requests stay in the workers.

What uvicorn's supervisor gave is kept: the workers are uvicorn ``Server``s in ``spawn``
processes; a worker that dies is replaced (a worker that fails its start-up stops the whole
service, as it would fail again); SIGINT or SIGTERM stops accepting, passes the signal on and
waits for every worker's graceful shutdown; a second signal is passed on as well (a second
SIGINT makes uvicorn force its exit). Where Unix sockets cannot carry descriptors
(:func:`can_pass_connections` is false, e.g. on Windows) the caller keeps uvicorn's own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import selectors
import signal
import socket
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from types import FrameType

import uvicorn
from uvicorn.config import STARTUP_FAILURE

log = logging.getLogger("econtract.serving")

# What a worker writes to the parent on its channel, one byte each.
_READY = b"R"
_TAKEN = b"T"
_CLOSED = b"C"
# What the parent writes with each connection's descriptor.
_CONNECTION = b"c"
# Connections accepted in one turn of the parent's loop, so that a flood of new connections
# does not keep it from hearing its workers and signals.
_ACCEPTS_PER_TURN = 64
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# How long the first workers wait for the slowest of them before the service opens anyway.
_OPENING_GRACE_SECONDS = 30.0


def can_pass_connections() -> bool:
    """Whether this platform can hand accepted connections to worker processes."""
    return hasattr(socket, "send_fds") and hasattr(socket, "AF_UNIX")


def run_workers(config: uvicorn.Config, *, workers: int) -> int:
    """Serve ``config``'s application with ``workers`` processes until SIGINT or SIGTERM.

    Returns the exit status: 0 after a signal, ``STARTUP_FAILURE`` (3) when a worker failed
    its start-up. ``config`` names its application by import string (it is pickled for each
    worker).
    """
    if workers < 1:
        raise ValueError("workers must be at least 1.")
    listener = config.bind_socket()
    listener.listen(config.backlog)
    listener.setblocking(False)
    return _Supervisor(config, listener, workers).run()


# --- the parent ---------------------------------------------------------------------------------


@dataclass(eq=False)
class _Worker:
    """One worker process as the parent sees it."""

    process: BaseProcess
    channel: socket.socket
    """The parent's end of the worker's socket pair."""
    ready: bool = False
    """The worker said it serves (it may have died since)."""
    gone: bool = False
    """Its channel broke: the worker died, its sentinel will say so too."""
    open: int = 0
    """Connections handed to the worker and not yet closed."""
    handed: deque[socket.socket] = field(default_factory=deque)
    """The parent's copies of the connections handed to the worker and not yet taken, in the
    order they were handed."""

    @property
    def available(self) -> bool:
        """Whether the worker may be given a connection."""
        return self.ready and not self.gone


class _Supervisor:
    """The parent: accepts, hands out connections, replaces workers, stops on a signal."""

    def __init__(self, config: uvicorn.Config, listener: socket.socket, count: int) -> None:
        self.config = config
        self.listener = listener
        self.count = count
        self.workers: list[_Worker] = []
        self.selector = selectors.DefaultSelector()
        self.waiting: deque[socket.socket] = deque()
        """Connections accepted while no worker was ready: handed out to the next one."""
        self.listening = False
        self.opened = False
        """Whether the service has started accepting (it does once every first worker is
        ready: a keep-alive connection stays with the worker it was given, so connections
        made while only one worker serves would stay with that one)."""
        self.open_by: float | None = None
        """When the service opens even if a first worker is not ready yet."""
        self.turn = 0
        self.signals: list[int] = []
        self.stopping = False
        self.status = 0

    def run(self) -> int:
        """Start the workers and serve until told to stop; return the exit status."""
        wake_read, wake_write = socket.socketpair()
        wake_read.setblocking(False)
        wake_write.setblocking(False)
        previous_wakeup = signal.set_wakeup_fd(wake_write.fileno())
        previous_handlers = {sig: signal.signal(sig, self._on_signal) for sig in _STOP_SIGNALS}
        self.selector.register(wake_read, selectors.EVENT_READ, self._drain_wakeup)
        log.info(
            "serving with workers",
            extra={"workers": self.count, "parent_pid": os.getpid()},
        )
        try:
            for _ in range(self.count):
                self.workers.append(self._start_worker())
            while not self.stopping or self.workers:
                timeout = None
                if not self.opened and self.open_by is not None:
                    timeout = max(self.open_by - time.monotonic(), 0.0)
                events = self.selector.select(timeout)
                # Signals first: a worker that ends on the same signal is not a failure.
                while self.signals:
                    self._stop(self.signals.pop(0))
                for key, _ in events:
                    key.data(key.fileobj)
                self._open_when_ready()
        finally:
            for sig, handler in previous_handlers.items():
                signal.signal(sig, handler)
            signal.set_wakeup_fd(previous_wakeup)
            for worker in self.workers:
                worker.process.kill()
                worker.process.join()
                for connection in worker.handed:
                    connection.close()
            self.selector.close()
            for sock in (wake_read, wake_write, self.listener, *self.waiting):
                sock.close()
        return self.status

    # Signals -------------------------------------------------------------------------------

    def _on_signal(self, sig: int, _frame: FrameType | None) -> None:
        # Only noted here: the wake-up descriptor makes the loop act on it at once.
        self.signals.append(sig)

    def _drain_wakeup(self, wake: object) -> None:
        assert isinstance(wake, socket.socket)
        with contextlib.suppress(BlockingIOError):
            while wake.recv(512):
                pass

    def _stop(self, sig: int) -> None:
        """Stop accepting and pass ``sig`` on to every worker (again, on a second signal)."""
        if not self.stopping:
            log.info("stopping the workers", extra={"signal": signal.Signals(sig).name})
        self.stopping = True
        self._listen(False)
        for worker in self.workers:
            if worker.process.pid is not None and worker.process.exitcode is None:
                os.kill(worker.process.pid, sig)

    # Workers -------------------------------------------------------------------------------

    def _start_worker(self) -> _Worker:
        parent_end, worker_end = socket.socketpair()
        process = multiprocessing.get_context("spawn").Process(
            target=_serve_as_worker,
            args=(self.config, worker_end),
            name="econtract-worker",
        )
        process.start()
        # The worker holds its own copy now; with the parent's closed, the pair breaks when
        # the worker dies.
        worker_end.close()
        parent_end.setblocking(False)
        worker = _Worker(process=process, channel=parent_end)
        self.selector.register(parent_end, selectors.EVENT_READ, self._hear)
        self.selector.register(process.sentinel, selectors.EVENT_READ, self._reap)
        return worker

    def _worker_of(self, predicate: Callable[[_Worker], bool]) -> _Worker | None:
        return next((worker for worker in self.workers if predicate(worker)), None)

    def _hear(self, channel: object) -> None:
        """Read what a worker said: ready, connections taken or closed."""
        worker = self._worker_of(lambda w: w.channel is channel)
        if worker is not None:
            self._read(worker)

    def _read(self, worker: _Worker) -> bool:
        """Read once from ``worker``'s channel; whether there may be more to read."""
        try:
            data = worker.channel.recv(4096)
        except BlockingIOError:
            return False
        except OSError:
            data = b""
        if not data:
            # The worker is gone; its sentinel says so as well, and it is reaped there.
            self._gone(worker)
            return False
        for _ in range(min(data.count(_TAKEN), len(worker.handed))):
            worker.handed.popleft().close()
        worker.open -= data.count(_CLOSED)
        worker.open = max(worker.open, 0)
        if _READY in data:
            worker.ready = True
            log.info("worker ready", extra={"worker_pid": worker.process.pid})
            if self.open_by is None:
                self.open_by = time.monotonic() + _OPENING_GRACE_SECONDS
            if self.opened:
                self._hand_out_waiting()
                self._listen(not self.stopping)
        return True

    def _open_when_ready(self) -> None:
        """Start accepting once every first worker is ready, or the grace is over."""
        if self.opened or self.stopping or self.open_by is None:
            return
        if all(w.ready for w in self.workers) or time.monotonic() >= self.open_by:
            self.opened = True
            log.info("accepting connections", extra={"ready": self._available_count()})
            self._listen(self._available_count() > 0)

    def _reap(self, sentinel: object) -> None:
        """A worker ended: replace it, or stop the service if it never started."""
        worker = self._worker_of(lambda w: w.process.sentinel == sentinel)
        if worker is None:
            return
        self.selector.unregister(worker.process.sentinel)
        # What it said before it died: the connections it took are its own (it may have read
        # their requests); the others are handed again.
        while self._read(worker):
            pass
        self._gone(worker)
        worker.channel.close()
        worker.process.join()
        code = worker.process.exitcode
        if self.stopping:
            self.workers.remove(worker)
            return
        if not worker.ready and code is not None and code >= 0:
            # It exited by itself before it served (the application, its settings or the
            # database are wrong): a new one would fail the same way.
            log.error(
                "a worker failed to start; stopping the service",
                extra={"worker_pid": worker.process.pid, "exit_code": code},
            )
            self.workers.remove(worker)
            self.status = STARTUP_FAILURE
            self._stop(signal.SIGTERM)
            return
        log.warning(
            "a worker died; starting another",
            extra={"worker_pid": worker.process.pid, "exit_code": code},
        )
        # In the same place, so that equals are still taken in the same turn.
        self.workers[self.workers.index(worker)] = self._start_worker()
        if not self._available_count():
            self._listen(False)

    # Connections ---------------------------------------------------------------------------

    def _gone(self, worker: _Worker) -> None:
        """``worker``'s channel broke: it takes nothing more, and what it had not taken is
        handed to the others (or closed if the service is stopping)."""
        with contextlib.suppress(KeyError):
            self.selector.unregister(worker.channel)  # unless an earlier read found the end
        worker.gone = True
        untaken, worker.handed = worker.handed, deque()
        if not untaken:
            return
        log.warning(
            "connections a worker did not take handed again",
            extra={"worker_pid": worker.process.pid, "connections": len(untaken)},
        )
        for connection in untaken:
            if self.stopping:
                connection.close()
            else:
                self._hand_out(connection)

    def _listen(self, on: bool) -> None:
        if on and not self.listening:
            self.selector.register(self.listener, selectors.EVENT_READ, self._accept)
        elif not on and self.listening:
            self.selector.unregister(self.listener)
        self.listening = on

    def _accept(self, _listener: object) -> None:
        for _ in range(_ACCEPTS_PER_TURN):
            try:
                connection, _address = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                # A connection reset before it was accepted, or out of descriptors: the
                # others are still served.
                log.warning("accept failed", extra={"error": str(exc)})
                return
            self._hand_out(connection)

    def _hand_out(self, connection: socket.socket) -> None:
        """Pass ``connection`` to the available worker with the fewest open connections."""
        candidates = self._by_preference()
        if not candidates:
            # Every worker is starting (again): the first that is ready gets it, and the
            # backlog waits in the kernel meanwhile.
            self.waiting.append(connection)
            self._listen(False)
            return
        for worker in candidates:
            try:
                socket.send_fds(worker.channel, [_CONNECTION], [connection.fileno()])
            except BlockingIOError:
                continue  # Its channel is full (the worker is stuck): ask the next one.
            except OSError:
                worker.gone = True  # It died; its sentinel will say so.
                continue
            worker.open += 1
            # Closed when the worker says it has taken it, or handed again if it dies first.
            worker.handed.append(connection)
            return
        log.warning("no worker could take a connection; closing it")
        connection.close()

    def _by_preference(self) -> list[_Worker]:
        """The available workers, fewest open connections first, equals in turn."""
        count = len(self.workers)
        # Equals are taken from the one after the last chosen, so that a burst alternates.
        order = [self.workers[(self.turn + step) % count] for step in range(count)]
        ranked = sorted((w for w in order if w.available), key=lambda w: w.open)
        if ranked:
            self.turn = (self.workers.index(ranked[0]) + 1) % count
        return ranked

    def _hand_out_waiting(self) -> None:
        while self.waiting:
            self._hand_out(self.waiting.popleft())
            if not self._available_count():
                return

    def _available_count(self) -> int:
        return sum(1 for w in self.workers if w.available)


# --- a worker -----------------------------------------------------------------------------------


def _serve_as_worker(config: uvicorn.Config, channel: socket.socket) -> None:
    """A worker process's entry point: serve the connections the parent hands over."""
    # As uvicorn's own workers do: logging is set up again in each process.
    config.configure_logging()
    # The parent stops the service; a traceback of the interrupt would say nothing more.
    with contextlib.suppress(KeyboardInterrupt):
        _HandedConnectionsServer(config, channel).run()


def _warm_up() -> None:
    """Draw what a worker's first licence would (:func:`econtract.issuance.warm_up`)."""
    # Imported here: the parent process issues nothing, and only a worker needs the domain.
    from econtract.issuance import warm_up  # noqa: PLC0415

    try:
        warm_up()
    except Exception:  # the worker serves anyway; its first licence says what is wrong
        log.warning("the worker's warm-up failed", exc_info=True)


class _HandedConnectionsServer(uvicorn.Server):
    """A uvicorn server that listens on nothing and serves the connections handed to it."""

    def __init__(self, config: uvicorn.Config, channel: socket.socket) -> None:
        super().__init__(config)
        self.channel = channel
        self.handovers: set[asyncio.Task[object]] = set()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """Start the application, then take connections from the parent and say so."""
        await self.lifespan.startup()
        if self.lifespan.should_exit:
            sys.exit(STARTUP_FAILURE)
        # Before the parent hands it a connection: the first licence would otherwise pay for
        # about a second of CPU (a worker's first requests took that much longer).
        _warm_up()
        self.servers = []
        self.channel.setblocking(False)
        asyncio.get_running_loop().add_reader(self.channel.fileno(), self._take_connections)
        self.started = True
        self._tell(_READY)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Take no more connections, then shut down as uvicorn does."""
        if self.channel.fileno() >= 0:
            asyncio.get_running_loop().remove_reader(self.channel.fileno())
        await super().shutdown(sockets)

    def _tell(self, message: bytes) -> None:
        # The parent is gone or not reading: reading the channel tells the worker to stop in
        # the first case, and a count off by one only skews the next choice in the second.
        with contextlib.suppress(OSError):
            self.channel.send(message)

    def _take_connections(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                data, fds, _flags, _address = socket.recv_fds(self.channel, 1, 1)
            except BlockingIOError:
                return
            except OSError:
                data, fds = b"", []
            if fds:
                # At once, before anything is read from them: until the parent hears this it
                # keeps its copies, and hands them to another worker if this one dies.
                self._tell(_TAKEN * len(fds))
            for fd in fds:
                connection = socket.socket(fileno=fd)
                connection.setblocking(False)
                if connection.family in (socket.AF_INET, socket.AF_INET6):
                    # As asyncio sets on the connections its own servers accept.
                    connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                task: asyncio.Task[object] = loop.create_task(
                    loop.connect_accepted_socket(self._create_protocol, connection)
                )
                self.handovers.add(task)
                task.add_done_callback(self._handed_over)
            if not data:
                # The parent is gone: nobody will hand over more connections or stop us.
                loop.remove_reader(self.channel.fileno())
                self.should_exit = True
                return

    def _handed_over(self, task: asyncio.Task[object]) -> None:
        self.handovers.discard(task)
        if task.cancelled() or task.exception() is not None:
            # The connection was closed before it reached the protocol.
            self._tell(_CLOSED)

    def _create_protocol(self) -> asyncio.Protocol:
        """The protocol uvicorn's ``startup`` makes, which tells the parent when it closes."""
        protocol: asyncio.Protocol = self.config.http_protocol_class(  # type: ignore[call-arg]
            config=self.config,
            server_state=self.server_state,
            app_state=self.lifespan.state,
        )
        connection_lost = protocol.connection_lost

        def connection_lost_and_told(exc: Exception | None) -> None:
            try:
                connection_lost(exc)
            finally:
                self._tell(_CLOSED)

        # On the instance, so that whichever protocol class uvicorn chose is left as it is.
        protocol.connection_lost = connection_lost_and_told  # type: ignore[method-assign]
        return protocol
