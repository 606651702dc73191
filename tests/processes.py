"""Which process of `serve --workers N` answers a connection: read from Linux's /proc, nothing guessed.

The workers share one listening socket and the kernel hands each connection to one of them. A test that
must reach a given worker opens connections until `serving_worker` says one landed there.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path


def worker_pids(parent: int) -> list[int]:
    """The worker processes uvicorn's supervisor `parent` runs (its spawned children), by pid."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue  # it ended meanwhile
        parent_of = int(stat.rpartition(")")[2].split()[1])
        if parent_of == parent and b"spawn_main" in command:
            found.append(int(entry.name))
    return sorted(found)


def _socket_inode(local_port: int, remote_port: int) -> str | None:
    """The inode of the IPv4 TCP socket whose local and remote ports are these (the server's end)."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, inode = fields[1], fields[2], fields[9]
        if int(local.rpartition(":")[2], 16) == local_port and int(remote.rpartition(":")[2], 16) == remote_port:
            return inode
    return None


def serving_worker(client: socket.socket, server_port: int, workers: list[int]) -> int | None:
    """The pid among `workers` that holds the server's end of `client`'s connection, once it accepted it."""
    inode = _socket_inode(server_port, client.getsockname()[1])
    if inode is None:
        return None
    target = f"socket:[{inode}]"
    for pid in workers:
        try:
            descriptors = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in descriptors:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                    return pid
            except OSError:
                continue
    return None
