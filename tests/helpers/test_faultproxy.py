"""The test harness's TCP fault proxy, against a local echo server."""

import socket
import threading

import pytest

from tests.helpers.faultproxy import PASS, REFUSE, STALL, FaultProxy


@pytest.fixture
def echo():
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def echo_back(conn):
        try:
            for data in iter(lambda: conn.recv(1024), b""):
                conn.sendall(data)
        except OSError:
            pass  # the proxy reset it: that is the test
        finally:
            conn.close()

    def serve():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            threading.Thread(target=echo_back, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    yield server.getsockname()[1]
    stop.set()
    server.close()


def roundtrip(port: int, payload: bytes = b"ping", timeout: float = 2.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        conn.sendall(payload)
        return conn.recv(1024)


def test_passes_resets_stalls_and_refuses(echo):
    proxy = FaultProxy("127.0.0.1", echo).start()
    try:
        assert roundtrip(proxy.port) == b"ping"
        live = socket.create_connection(("127.0.0.1", proxy.port), timeout=2)
        live.sendall(b"a")
        assert live.recv(16) == b"a"
        assert proxy.reset_all() >= 1
        with pytest.raises((ConnectionResetError, OSError)):
            live.sendall(b"b")
            if not live.recv(16):
                raise ConnectionResetError("closed")
        live.close()
        proxy.set_mode(STALL)
        with pytest.raises(socket.timeout):
            roundtrip(proxy.port, timeout=0.5)  # accepted, but nothing comes back
        proxy.set_mode(REFUSE)
        with pytest.raises(OSError):
            roundtrip(proxy.port, timeout=1)
        proxy.set_mode(PASS)
        assert roundtrip(proxy.port) == b"ping"
    finally:
        proxy.stop()
