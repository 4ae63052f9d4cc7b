#!/usr/bin/python3
"""Prints N distinct free loopback TCP ports (default 1) on one line.

Every socket stays bound until all N are known: closing each before binding
the next lets the kernel hand out the same port twice. Shared by the shell
tests (`read -r a b < <(tests/free_ports.py 2)`) and importable from Python.
"""

import socket
import sys


def free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


if __name__ == "__main__":
    print(*free_ports(int(sys.argv[1]) if len(sys.argv) > 1 else 1))
