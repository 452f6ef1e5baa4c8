#!/usr/bin/env python3
"""Adds the index tansu 0.6's SQLite storage lacks, to the database at PATH.

tansu reads a fetched record's headers with a query on header (topition,
offset_id), and its schema has no index for it: every record fetched scans
every header the broker has ever stored (every Contrail message carries at
least two), so a fetch gets slower as the broker's history grows — about
20 ms a record after one benchmark run, against 0.01 ms with the index. The
broker handles storage one request at a time, so slow fetches also stall
produces, time clients out and, through idempotent-producer epoch bumps, have
been seen to crash its storage task. Idempotent; run after the broker has
created its schema. Standard library only.
"""
import sqlite3
import sys

path = sys.argv[1]
connection = sqlite3.connect(path, timeout=30)
try:
    exists = connection.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'header'"
    ).fetchone()
    if not exists:
        sys.exit("tansu has not created its schema yet")
    connection.execute(
        "CREATE INDEX IF NOT EXISTS header_topition_offset ON header (topition, offset_id)"
    )
    connection.commit()
finally:
    connection.close()
