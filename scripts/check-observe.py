#!/usr/bin/env python3
"""Checks what `make observe` shows against the running system (standard library only).

  traffic     books a few flights through the public API (approved, declined and
              flaky cards, a cancellation, a sold-out attempt, an unknown booking),
              and prints the id of the booking whose trace to look for
  trace       finds one booking's trace in Jaeger and checks it has every hop:
              the request, each participant's command, every reply, the retries
              the saga's timer sent, and the compensation
  dashboards  evaluates every panel query of every dashboard in
              deploy/grafana/dashboards, and the metric selectors of every alert
              rule Prometheus has loaded, against Prometheus: a query with no
              series is a renamed metric, a wrong label or a metric never exported

scripts/check-observe.sh runs all three in order; see docs/observability.md.
"""

import argparse
import json
import pathlib
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

ROOT = pathlib.Path(__file__).resolve().parent.parent
APPROVED, DECLINED, FLAKY = "4242424242424242", "4000000000000002", "4000000000000119"
CONSUMERS = [
    "flight-inventory.seat-commands",
    "payment.commands",
    "notification.commands",
    "booking.saga-replies",
]


def request(method, url, token=None, body=None, headers=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    for name, value in (headers or {}).items():
        req.add_header(name, value)
    try:
        with urllib.request.urlopen(req, timeout=40) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def fail(message):
    print(f"FAIL  {message}")
    sys.exit(1)


# --- traffic -------------------------------------------------------------------


def traffic(args):
    tomorrow = time.strftime("%Y-%m-%dT09:00:00Z", time.gmtime(time.time() + 86400))
    arrival = time.strftime("%Y-%m-%dT11:30:00Z", time.gmtime(time.time() + 86400))
    status, flight = request("POST", f"{args.inventory_url}/flights", args.admin_token, {
        "flight_number": "CT900", "origin": "ICN", "destination": "NRT",
        "departure": tomorrow, "arrival": arrival, "capacity": 40,
        "fare": {"amount": "120.00", "currency": "USD"},
    })
    if status != 201:
        fail(f"schedule a flight: {status} {flight}")
    flight_id = flight["flight_id"]

    def book(card, passengers=1, wait=20):
        body = {
            "customer_id": args.customer,
            "flight_id": flight_id,
            "passengers": [{"first_name": f"Obs{i}", "last_name": "Erver"} for i in range(passengers)],
            "payment": {"card": {"number": card, "expiry": "12/35", "cvc": "123"}, "miles": 0},
            "contact": {"email": "observer@example.com", "phone": "+821012345678"},
        }
        return request("POST", f"{args.booking_url}/bookings", args.customer_token, body,
                       {"Idempotency-Key": str(uuid.uuid4()), "Prefer": f"wait={wait}"})

    # The booking to trace: two transient payment failures (the timer worker
    # retries), confirmed, then cancelled (refund, release, notice).
    status, traced = book(FLAKY)
    if status not in (200, 201) or traced.get("status") != "confirmed":
        fail(f"the flaky-card booking was not confirmed: {status} {traced}")
    booking_id = traced["booking_id"]
    status, answer = request("POST", f"{args.booking_url}/bookings/{booking_id}/cancel",
                             args.customer_token, {"reason": "observability check"})
    if status != 202:
        fail(f"cancel {booking_id}: {status} {answer}")

    # The rest of the mix, so that every dashboard panel has something to show.
    for card in [APPROVED] * args.bookings + [DECLINED] * max(1, args.bookings // 4):
        book(card, wait=0)
    book(APPROVED, passengers=9, wait=0)  # 9 seats: fine, then sold out below
    request("GET", f"{args.inventory_url}/flights/{flight_id}/quote?seats=99", args.customer_token)
    request("GET", f"{args.booking_url}/bookings/{uuid.uuid4()}", args.customer_token)  # a 404

    deadline = time.time() + 60
    while time.time() < deadline:
        status, view = request("GET", f"{args.booking_url}/bookings/{booking_id}", args.customer_token)
        if view and view.get("status") == "cancelled":
            break
        time.sleep(0.5)
    else:
        fail(f"booking {booking_id} was not cancelled within a minute")
    print(booking_id)


# --- trace ---------------------------------------------------------------------


def tags_of(span):
    return {tag["key"]: str(tag["value"]) for tag in span.get("tags", [])}


def trace(args):
    query = urllib.parse.urlencode({
        "service": args.service,
        "tags": json.dumps({"correlation_id": args.booking}),
        "lookback": "2h",
        "limit": 50,
    })
    deadline = time.time() + args.wait
    missing = ["the trace"]
    while time.time() < deadline:
        status, found = request("GET", f"{args.jaeger}/api/traces?{query}")
        if status != 200:
            fail(f"Jaeger answered {status}: {found}")
        traces = found.get("data") or []
        saga = [t for t in traces if any(
            s["operationName"] == "saga.step" for s in t["spans"])]
        if saga:
            missing = missing_hops(saga[0])
            if not missing:
                report(saga[0], traces)
                return
        time.sleep(1)
    fail(f"booking {args.booking}'s trace in {args.jaeger} lacks: " + "; ".join(missing))


def missing_hops(found):
    spans = [(s["operationName"], tags_of(s)) for s in found["spans"]]
    missing = []
    if not any(name == "http_request" and t.get("path") == "/bookings" and t.get("method") == "POST"
               for name, t in spans):
        missing.append("the POST /bookings request")
    for consumer in CONSUMERS:
        if not any(name == "consume" and t.get("consumer") == consumer for name, t in spans):
            missing.append(f"a message handled by {consumer}")
    steps = {(t.get("step"), t.get("phase")) for name, t in spans if name == "saga.step"}
    for step, phase in [("HoldSeats", "Forward"), ("TakePayment", "Forward"), ("ConfirmBooking", "Forward"),
                        ("SendConfirmation", "Forward"), ("Refund", "Compensation"),
                        ("ReleaseSeats", "Compensation"), ("SendCancellation", "AfterCompensation")]:
        if (step, phase) not in steps:
            missing.append(f"{phase} step {step}")
    attempts = {t.get("attempt") for name, t in spans if name == "saga.step" and t.get("step") == "TakePayment"}
    if not {"1", "2", "3"} <= attempts:
        missing.append(f"TakePayment attempts 1-3 (saw {sorted(attempts)})")
    triggers = {t.get("trigger") for name, t in spans if name == "saga.resume"}
    for trigger in ("timer", "cancellation"):
        if trigger not in triggers:
            missing.append(f"the saga resumed by {trigger}")
    return missing


def report(found, traces):
    services = sorted({p["serviceName"] for p in found["processes"].values()})
    print(f"ok    trace {found['traceID']}: {len(found['spans'])} spans from {', '.join(services)}")
    print("      the request, a command and a reply through every participant, payment retries sent by the"
          " timer, the cancellation and its compensation")
    others = [t["traceID"] for t in traces if t is not found]
    if others:
        print(f"      linked: {', '.join(others)} (the cancellation request's own trace)")


# --- dashboards and alerts -------------------------------------------------------

# Grafana's variables, as the check substitutes them.
VARIABLES = {"$__rate_interval": "1m", "$__range": "15m", "$__interval": "15s", "$service": ".*"}
# Label values that name events, not structure: a selector on them is empty
# until the event happens (no 5xx in a healthy run). Such a selector passes if
# its metric exists and carries the label.
EVENT_VALUES = {'status=~"5.."'}
KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}


def prometheus_query(base, expr):
    status, answer = request("GET", f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    if status != 200 or answer.get("status") != "success":
        return None, f"{status} {answer.get('error') if answer else ''}"
    return answer["data"]["result"], None


def selectors(expr):
    """The vector selectors of a PromQL expression: metric names with their matchers."""
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    expr = re.sub(r"\[[^\]]*\]", " ", expr)
    expr = re.sub(r"\boffset\s+\d+[smhdwy]", " ", expr)
    found = []
    for match in re.finditer(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{[^}]*\})?(\s*\()?", expr):
        name, matchers, call = match.groups()
        if call or name in KEYWORDS:
            continue
        found.append((name, matchers or ""))
    return found


def check_selector(base, name, matchers):
    result, error = prometheus_query(base, f"{name}{matchers}")
    if error:
        return f"{name}{matchers}: {error}"
    if result:
        return None
    inner = matchers.strip("{}")
    event_matchers = [m.strip() for m in inner.split(",") if m.strip() in EVENT_VALUES]
    if not event_matchers:
        return f"{name}{matchers} has no series"
    structural = ", ".join(m.strip() for m in inner.split(",") if m.strip() and m.strip() not in EVENT_VALUES)
    result, error = prometheus_query(base, f"{name}{{{structural}}}")
    if not result:
        return f"{name}{{{structural}}} has no series"
    labels = {re.split(r"[=!~]", m)[0] for m in event_matchers}
    if not all(any(label in series["metric"] for series in result) for label in labels):
        return f"{name} has no label {', '.join(labels)}"
    return None


def dashboards(args):
    problems, checked = [], 0
    for path in sorted((ROOT / "deploy/grafana/dashboards").glob("*.json")):
        board = json.loads(path.read_text())
        for panel in board.get("panels", []):
            for target in panel.get("targets", []):
                expr = target["expr"]
                for variable, value in VARIABLES.items():
                    expr = expr.replace(variable, value)
                result, error = prometheus_query(args.prometheus, expr)
                checked += 1
                if error or not result:
                    problems.append(f"{path.name} panel {panel['title']!r} {target['refId']}: "
                                    f"{error or 'no series'}: {expr}")
    status, rules = request("GET", f"{args.prometheus}/api/v1/rules")
    groups = rules["data"]["groups"] if status == 200 else []
    alerts = [rule for group in groups for rule in group["rules"] if rule["type"] == "alerting"]
    if not alerts:
        problems.append("Prometheus has loaded no alert rules")
    for rule in alerts:
        for name, matchers in selectors(rule["query"]):
            checked += 1
            problem = check_selector(args.prometheus, name, matchers)
            if problem:
                problems.append(f"alert {rule['name']}: {problem}")
    for problem in problems:
        print(f"FAIL  {problem}")
    if problems:
        sys.exit(1)
    print(f"ok    {checked} panel queries and alert selectors return series ({len(alerts)} alert rules loaded)")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("traffic")
    p.add_argument("--booking-url", default="http://127.0.0.1:8080")
    p.add_argument("--inventory-url", default="http://127.0.0.1:8081")
    p.add_argument("--customer", default="cust-observe")
    p.add_argument("--customer-token", required=True)
    p.add_argument("--admin-token", required=True)
    p.add_argument("--bookings", type=int, default=20)
    p.set_defaults(run=traffic)
    p = commands.add_parser("trace")
    p.add_argument("--jaeger", default="http://127.0.0.1:16687")
    p.add_argument("--service", default="booking", help="the service whose spans to search")
    p.add_argument("--booking", required=True)
    p.add_argument("--wait", type=float, default=30, help="seconds to wait for the spans to arrive")
    p.set_defaults(run=trace)
    p = commands.add_parser("dashboards")
    p.add_argument("--prometheus", default="http://127.0.0.1:19090")
    p.set_defaults(run=dashboards)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
