"""A TCP proxy on loopback that forwards to one target and injects faults: every live
connection reset at once, connections held open with nothing forwarded (half-open as the
client sees it), or new connections refused. It runs its own event loop in a thread, so
synchronous tests can drive it. Traffic goes only to the target address it was given."""

from __future__ import annotations

import asyncio
import socket
import struct
import threading

PASS, STALL, REFUSE = "pass", "stall", "refuse"


class FaultProxy:
    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self.mode = PASS
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._writers: set[asyncio.StreamWriter] = set()
        self._resumed = asyncio.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "FaultProxy":
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _shutdown(self) -> None:
        await self._reset_all()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # ---- faults, called from the test's thread ------------------------------------

    def reset_all(self) -> int:
        """Abort every live connection with a TCP reset; returns how many."""
        return asyncio.run_coroutine_threadsafe(self._reset_all(), self._loop).result(10)

    def set_mode(self, mode: str) -> None:
        def apply() -> None:
            self.mode = mode
            if mode == PASS:
                self._resumed.set()
            else:
                self._resumed.clear()

        self._loop.call_soon_threadsafe(apply)

    # ---- the proxy ----------------------------------------------------------------

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._resumed.set()
        server = self._loop.run_until_complete(asyncio.start_server(self._accept, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        server.close()

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        if self.mode == REFUSE:
            _abort(client_writer)
            return
        try:
            upstream_reader, upstream_writer = await asyncio.wait_for(asyncio.open_connection(*self.target), 10)
        except (OSError, TimeoutError):
            _abort(client_writer)
            return
        self._writers.update((client_writer, upstream_writer))
        await asyncio.gather(self._pipe(client_reader, upstream_writer), self._pipe(upstream_reader, client_writer),
                             return_exceptions=True)
        for writer in (client_writer, upstream_writer):
            self._writers.discard(writer)
            writer.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            data = await reader.read(65536)
            await self._resumed.wait()  # stalled: hold the bytes, keep the connection open
            if not data:
                writer.write_eof() if writer.can_write_eof() else writer.close()
                return
            writer.write(data)
            await writer.drain()

    async def _reset_all(self) -> int:
        writers = list(self._writers)
        for writer in writers:
            _abort(writer)
        self._writers.clear()
        return len(writers)


def _abort(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset (SO_LINGER 0), not a clean FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
    writer.transport.abort()
