#!/usr/bin/env python3
"""Exit 0 if the Kafka-protocol broker at HOST PORT answers a Metadata request.

An open port is not enough: a broker whose storage has failed (tansu 0.6
panics on some idempotent-producer states and keeps listening) accepts
connections but answers nothing. Metadata needs the broker's storage, so an
answer means the broker works. Standard library only.
"""
import socket
import struct
import sys

host, port = sys.argv[1], int(sys.argv[2])
client_id = b"contrail-probe"
# Metadata v0, all topics: api key 3, version 0, correlation id 1, client id, empty topic array.
body = struct.pack(">hhih", 3, 0, 1, len(client_id)) + client_id + struct.pack(">i", 0)
try:
    with socket.create_connection((host, port), timeout=3) as conn:
        conn.settimeout(5)
        conn.sendall(struct.pack(">i", len(body)) + body)
        header = conn.recv(8)
        if len(header) < 8:
            sys.exit(1)
        _size, correlation = struct.unpack(">ii", header)
        sys.exit(0 if correlation == 1 else 1)
except OSError:
    sys.exit(1)
