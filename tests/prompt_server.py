"""uvicorn's server, stopped as soon as a test is done with it: the fast suite's biggest wait.

uvicorn looks at `should_exit` every 0.1 s, and its shutdown then gives connections a fixed 0.1 s before
it waits for them: about 0.2 s idle for every server a test starts, which added up to more than half a
minute of the fast suite. `PromptServer.stop()` wakes the main loop at once, and its shutdown waits for
what uvicorn's waits for (the listening sockets closed, each connection finished and closed, running
tasks done, then the lifespan's shutdown) by looking every millisecond instead of sleeping a fixed time.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

import uvicorn


class PromptServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def stop(self) -> None:
        """Ask the server to shut down (from any thread) and wake its loop to do it now."""
        self.should_exit = True
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop has ended already
                loop.call_soon_threadsafe(wake.set)

    async def main_loop(self) -> None:
        """uvicorn's loop (a tick every 0.1 s, for its Date header and limits) that `stop()` can wake."""
        self._wake = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 1) % 864000
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 0.1)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        for connection in list(self.server_state.connections):
            connection.shutdown()
        while self.server_state.connections or self.server_state.tasks:  # noqa: ASYNC110  (uvicorn has no event for it)
            await asyncio.sleep(0.001)  # their closing callbacks run on this loop; the caller's join bounds it
        for server in self.servers:
            await server.wait_closed()
        await self.lifespan.shutdown()
