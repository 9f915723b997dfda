"""A TCP exchange on 127.0.0.1 where accept, connect, send and recv all go through one ring."""

from __future__ import annotations

import socket

from iouring import IoUring, SockAddr

ACCEPT, CONNECT, SEND, RECV = 1, 2, 3, 4

with socket.create_server(("127.0.0.1", 0)) as server, socket.socket() as client:
    port = server.getsockname()[1]
    with IoUring(8) as ring:
        peer = SockAddr()  # the kernel writes the client's address here
        ring.accept(ACCEPT, server, peer, socket.SOCK_CLOEXEC)  # sockets work as fds
        ring.connect(CONNECT, client, ("127.0.0.1", port))  # the address is copied
        ring.submit_and_wait(2)
        results = {cqe.user_data: cqe.result() for cqe in (ring.copy_cqe(), ring.copy_cqe())}
        with socket.socket(fileno=results[ACCEPT]) as conn:  # result() raised on errors
            print(f"accepted a connection from {peer}")

            reply = bytearray(64)
            ring.send(SEND, client, b"ping over io_uring")
            ring.recv(RECV, conn, reply)
            ring.submit_and_wait(2)
            results = {cqe.user_data: cqe.result() for cqe in (ring.copy_cqe(), ring.copy_cqe())}
            assert reply[: results[RECV]] == b"ping over io_uring"

print("tcp_loopback: ok")
