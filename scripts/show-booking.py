#!/usr/bin/env python3
"""Prints a booking (GET /bookings/{id} JSON on stdin) with its routing slip
as a short story: every attempt of every step, then the compensation log."""
import json
import sys

booking = json.load(sys.stdin)
if "booking_id" not in booking:
    print(json.dumps(booking, indent=2))
    sys.exit(0)
total = booking.get("total", {})
print(f"booking {booking['booking_id']}: {booking['status']}, total {total.get('amount')} {total.get('currency')}")
slip = booking.get("routing_slip") or {}
why = slip.get("failure_reason") or slip.get("cancellation_reason")
print(f"  saga {slip.get('status')}" + (f" ({why})" if why else ""))
for entry in slip.get("activity_log", []):
    result = entry["result"]
    detail = result.get("reason", "")
    print(
        f"  {entry['started_at'][11:23]}  {entry['phase']:<18} {entry['step']:<17}"
        f" attempt {entry['attempt']}  {result['outcome']} {detail}"
    )
for entry in slip.get("compensation_log", []):
    uncertain = " (uncertain)" if entry.get("uncertain") else ""
    print(f"  compensation {entry['name']:<13} for {entry['for_step']:<12} {entry['state']}{uncertain}")
