"""A small TCP proxy on loopback: put it between the app and its database, stop it to
take the database away (every open connection is cut, new ones are refused), start it
again on the same port to bring the database back. ``hang()`` makes a database that
accepts connections and then never answers (nothing is forwarded either way, nothing is
cut), ``unhang()`` lets the held bytes through again.
"""
from __future__ import annotations

import select
import socket
import threading
from types import TracebackType
from typing import Self

POLL = 0.05
CHUNK = 65536


class TcpProxy:
    """Forwards 127.0.0.1:<port> to ``target``; ``stop()`` and ``start()`` as often as needed."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._listener: socket.socket | None = None
        self._running = threading.Event()
        self._forwarding = threading.Event()
        self._forwarding.set()
        self._threads: list[threading.Thread] = []
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> TcpProxy:
        """Listen (on the same port as before, if there was one) and forward in threads."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._running.set()
        self._spawn(self._accept_loop, listener)
        return self

    def stop(self) -> None:
        """Refuse new connections and cut every open one, as a database crash would."""
        self._running.clear()
        with self._lock:
            sockets = list(self._sockets)
            self._sockets.clear()
        for sock in sockets:
            _close(sock)
        for thread in self._threads:
            thread.join(timeout=5)
        self._threads = []
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def hang(self) -> None:
        """Keep accepting and keep every connection open, but forward nothing."""
        self._forwarding.clear()

    def unhang(self) -> None:
        """Forward again, held bytes first."""
        self._forwarding.set()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _spawn(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept_loop(self, listener: socket.socket) -> None:
        while self._running.is_set():
            readable, _, _ = select.select([listener], [], [], POLL)
            if not readable or not self._running.is_set():
                continue
            client, _ = listener.accept()
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._sockets.update((client, upstream))
            self._spawn(self._pump, client, upstream)
            self._spawn(self._pump, upstream, client)

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        """Copy bytes one way until either side closes or the proxy stops."""
        while self._running.is_set():
            try:
                if not self._forwarding.wait(POLL):
                    continue
                readable, _, _ = select.select([source], [], [], POLL)
                if not readable:
                    continue
                data = source.recv(CHUNK)
                if not data:
                    break
                sink.sendall(data)
            except (OSError, ValueError):
                break
        _close(source)
        _close(sink)
        with self._lock:
            self._sockets.discard(source)
            self._sockets.discard(sink)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
