"""A tiny TCP relay on 127.0.0.1 in front of a party's live server, which can lose answers on their way back.

Each connection is forwarded both ways as it comes, except the first ``drop`` ones: their request goes to the
server in full, the server's answer is read (so the server has done its work and committed), then the client's
connection is closed without a byte of it. That is a callback answered and the answer lost on the way back.
"""

from __future__ import annotations

import contextlib
import socket
import threading


class AnswerLosingRelay:
    def __init__(self, upstream_port: int, *, drop: int = 1, port: int = 0):
        self.upstream = ("127.0.0.1", upstream_port)
        # ``port``: the one a closed relay had, to bring the same address back (SO_REUSEADDR is set).
        self.listener = socket.create_server(("127.0.0.1", port))
        self.port = self.listener.getsockname()[1]
        self.drops_left = drop
        self.connections = 0
        self.dropped = 0
        self._lock = threading.Lock()
        self._closing = False
        self._open: set[socket.socket] = set()  # the connections being relayed, client side
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def close(self) -> None:
        """The relayed server goes down: no new connection, and the open ones (kept alive by a client) end."""
        self._closing = True
        _shut(self.listener)  # wakes the accept() below (close() alone would not)
        self.listener.close()
        self._thread.join(timeout=10)
        with self._lock:
            for client in self._open:
                _shut(client)

    def _accept(self) -> None:
        while not self._closing:
            try:
                client, _address = self.listener.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
                drop = self.drops_left > 0
                self.drops_left -= drop
            threading.Thread(target=self._relay, args=(client, drop), daemon=True).start()

    def _relay(self, client: socket.socket, drop: bool) -> None:
        with self._lock:
            self._open.add(client)
        try:
            self._forward(client, drop)
        finally:
            with self._lock:
                self._open.discard(client)

    def _forward(self, client: socket.socket, drop: bool) -> None:
        with client, socket.create_connection(self.upstream, timeout=30) as upstream:
            client.settimeout(30)
            forward = threading.Thread(target=_pump, args=(client, upstream), daemon=True)
            forward.start()
            if drop:
                answer = upstream.recv(65536)  # the server answered: its work is done and committed
                with self._lock:
                    self.dropped += bool(answer)
                _shut(client)  # the client sees the connection end, without a byte of the answer
                _shut(upstream)
                return
            _pump(upstream, client)
            forward.join(timeout=30)


def _shut(sock: socket.socket) -> None:
    """End a connection now, waking any thread blocked on it (close() alone waits for them)."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def _pump(source: socket.socket, sink: socket.socket) -> None:
    """Copy bytes until ``source`` closes, then close ``sink``'s sending side."""
    try:
        while chunk := source.recv(65536):
            sink.sendall(chunk)
        sink.shutdown(socket.SHUT_WR)
    except OSError:
        pass
