#!/usr/bin/env python3
"""Exit 0 if the Kafka broker at HOST PORT answers a Metadata request naming at least one broker.

An open port is not enough: a broker that is still starting accepts
connections before it has registered with its controller, and cannot take
produce requests until it has. Metadata v4 (supported by Kafka 1.0 through
4.x) lists the registered brokers. Standard library only.
"""
import socket
import struct
import sys


def recv_exactly(conn, size):
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            raise OSError("connection closed")
        data += chunk
    return data


host, port = sys.argv[1], int(sys.argv[2])
client_id = b"contrail-probe"
# Request header v1 (api key 3 = Metadata, version 4, correlation id 7, client id),
# then the body: topics = null (all), allow_auto_topic_creation = false.
body = struct.pack(">hhih", 3, 4, 7, len(client_id)) + client_id + struct.pack(">ib", -1, 0)
try:
    with socket.create_connection((host, port), timeout=3) as conn:
        conn.settimeout(5)
        conn.sendall(struct.pack(">i", len(body)) + body)
        (size,) = struct.unpack(">i", recv_exactly(conn, 4))
        response = recv_exactly(conn, size)
        # correlation id, throttle_time_ms, then the brokers array's length.
        correlation, _throttle, brokers = struct.unpack(">iii", response[:12])
        sys.exit(0 if correlation == 7 and brokers > 0 else 1)
except (OSError, struct.error):
    sys.exit(1)
