#!/usr/bin/env python3
"""Prints COUNT free loopback TCP ports, space-separated, chosen below the kernel's ephemeral port range.

Usage: free-ports.py COUNT [--with-next]   (--with-next: the port after each one is free too, e.g. opencode's mock LLM)

Below the ephemeral range (/proc/sys/net/ipv4/ip_local_port_range) no outgoing connection's local port can take a
chosen port between now and the moment its server binds it, nor while a stopped server is down before it starts again
on the same port: a port from the ephemeral range (bind to port 0) can be taken by any connection meanwhile.
"""
import random
import socket
import sys


def free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


count = int(sys.argv[1])
with_next = "--with-next" in sys.argv[2:]
try:
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        ephemeral_low = int(f.read().split()[0])
except (OSError, ValueError, IndexError):
    ephemeral_low = 32768
candidates = range(10000, ephemeral_low - 1)
chosen = []
for port in random.sample(candidates, len(candidates)):
    if len(chosen) == count:
        break
    if any(abs(port - c) <= 1 for c in chosen):
        continue
    if free(port) and (not with_next or free(port + 1)):
        chosen.append(port)
if len(chosen) < count:
    sys.exit(f"free-ports.py: fewer than {count} free ports below {ephemeral_low}")
print(" ".join(str(p) for p in chosen))
