// The operator console. Everything it shows comes from the operator API
// through api.js; nothing is rendered as HTML from data (textContent only).

import { api, ApiProblem, token } from "./api.js";

const $ = (selector) => document.querySelector(selector);

/** An element with attributes and children (strings become text). */
function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "className") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

const when = (instant) => (instant ? new Date(instant).toISOString().replace("T", " ").slice(0, 19) + "Z" : "");
const short = (uuid) => (uuid ? uuid.slice(0, 8) + "…" + uuid.slice(-4) : "");
const badge = (status) => el("span", { className: `status status-${status}` }, status);

function describe(error) {
  if (error instanceof ApiProblem) {
    return `${error.status}${error.type ? " " + error.type.split("/").pop() : ""}: ${error.message}`;
  }
  return String(error && error.message ? error.message : error);
}

function say(target, text, isError = false) {
  target.textContent = text;
  target.classList.toggle("error", isError);
}

/** Asks before anything changes; resolves to true on "Confirm". */
function confirmAction(question) {
  const dialog = $("#confirm");
  $("#confirm-question").textContent = question;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "yes"), { once: true });
    dialog.returnValue = "";
    dialog.showModal();
  });
}

// ------------------------------------------------------------------ token

function showTokenState() {
  say($("#token-state"), token.get()
    ? "Token in use for this tab. Every call is checked for the admin scope."
    : "No token: paste one (it stays in this tab only).");
}

$("#token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const value = $("#token").value.trim().replace(/^Bearer\s+/i, "");
  if (value) token.set(value);
  $("#token").value = "";
  showTokenState();
  searchSagas();
});
$("#token-forget").addEventListener("click", () => {
  token.forget();
  showTokenState();
});

// ------------------------------------------------------------------- tabs

for (const tab of document.querySelectorAll(".tab")) {
  tab.addEventListener("click", () => {
    for (const other of document.querySelectorAll(".tab")) {
      other.setAttribute("aria-selected", String(other === tab));
    }
    $("#sagas-view").hidden = tab.dataset.tab !== "sagas";
    $("#dead-letters-view").hidden = tab.dataset.tab !== "dead-letters";
    if (tab.dataset.tab === "dead-letters") showDeadLetters();
  });
}

// ------------------------------------------------------------------ sagas

let nextPage = null;

function sagaFilters() {
  const filters = {
    status: $("#filter-status").value,
    flight_id: $("#filter-flight").value.trim(),
    customer_id: $("#filter-customer").value.trim(),
  };
  const [direction, seconds] = $("#filter-age").value.split(":");
  if (seconds) {
    const instant = new Date(Date.now() - Number(seconds) * 1000).toISOString();
    filters[direction === "older" ? "created_before" : "created_after"] = instant;
  }
  return filters;
}

async function searchSagas(page = null) {
  const rows = $("#saga-rows");
  try {
    const list = await api.sagas({ ...sagaFilters(), ...(page || {}) });
    rows.replaceChildren(...list.items.map(sagaRow));
    if (list.items.length === 0) {
      rows.append(el("tr", {}, el("td", { colspan: 7, className: "empty" }, "No saga matches.")));
    }
    nextPage = list.next_before ? { before: list.next_before, before_id: list.next_before_id } : null;
    $("#saga-next").hidden = nextPage === null;
  } catch (error) {
    rows.replaceChildren(el("tr", {}, el("td", { colspan: 7, className: "empty error" }, describe(error))));
    $("#saga-next").hidden = true;
  }
}

function sagaRow(saga) {
  const current = saga.current ? `${saga.current.step} #${saga.current.attempt} (${saga.current.state})` : "";
  const flight = saga.flight ? `${saga.flight.flight_number} ${saga.flight.origin}→${saga.flight.destination}` : "";
  return el("tr", { "data-saga-id": saga.saga_id, "data-status": saga.status, onclick: () => openTimeline(saga.saga_id) },
    el("td", { className: "id", title: saga.saga_id }, short(saga.saga_id)),
    el("td", {}, badge(saga.status)),
    el("td", {}, saga.customer_id || ""),
    el("td", { title: saga.flight ? saga.flight.flight_id : "" }, flight),
    el("td", {}, current),
    el("td", {}, saga.failure_reason || ""),
    el("td", {}, when(saga.updated_at)));
}

$("#saga-filters").addEventListener("submit", (event) => {
  event.preventDefault();
  searchSagas();
});
$("#saga-next").addEventListener("click", () => searchSagas(nextPage));

// --------------------------------------------------------------- timeline

let openSaga = null;
let refreshTimer = null;
const SETTLING = new Set(["running", "compensating"]);

async function openTimeline(sagaId) {
  openSaga = sagaId;
  say($("#action-result"), "");
  await refreshTimeline();
}

async function refreshTimeline() {
  clearTimeout(refreshTimer);
  if (!openSaga) return;
  const sagaId = openSaga;
  try {
    const timeline = await api.timeline(sagaId);
    if (openSaga !== sagaId) return;
    renderTimeline(timeline);
    // While the saga moves on its own, follow it.
    if (SETTLING.has(timeline.status)) refreshTimer = setTimeout(refreshTimeline, 1500);
  } catch (error) {
    say($("#action-result"), describe(error), true);
  }
}

function renderTimeline(timeline) {
  $("#timeline").hidden = false;
  $("#timeline").dataset.sagaId = timeline.saga_id;
  $("#timeline-id").textContent = timeline.saga_id;
  $("#timeline-status").replaceChildren(badge(timeline.status));
  $("#timeline-status").dataset.status = timeline.status;
  $("#action-retry").disabled = !timeline.actions.retry;
  $("#action-compensate").disabled = !timeline.actions.compensate;

  const facts = [
    ["Type", timeline.saga_type],
    ["Started", when(timeline.created_at)],
    ["Last change", when(timeline.updated_at)],
    ["Finished", when(timeline.finished_at)],
    ["Pivot reached", timeline.pivoted ? "yes (the sale stands)" : "no"],
    ["Deadline", when(timeline.deadline)],
  ];
  if (timeline.booking) {
    const { flight } = timeline.booking;
    facts.push(["Customer", timeline.booking.customer_id]);
    facts.push(["Booking", timeline.booking.status]);
    facts.push(["Flight", `${flight.flight_number} ${flight.origin}→${flight.destination}, departs ${when(flight.departure)}`]);
  }
  if (timeline.failure_reason) facts.push(["Failure", timeline.failure_reason]);
  if (timeline.cancellation_reason) facts.push(["Cancelled", timeline.cancellation_reason]);
  const trace = timeline.trace
    ? (timeline.trace.url
      ? el("a", { id: "timeline-trace", href: timeline.trace.url, target: "_blank", rel: "noopener noreferrer" }, timeline.trace.trace_id)
      : el("code", { id: "timeline-trace" }, timeline.trace.trace_id))
    : "none recorded";
  facts.push(["Trace", trace]);
  $("#timeline-facts").replaceChildren(...facts.flatMap(([term, value]) =>
    value === "" ? [] : [el("dt", {}, term), el("dd", {}, value)]));

  const current = timeline.current;
  const itinerary = timeline.steps.map((run) => {
    const last = run.attempts[run.attempts.length - 1];
    const inHand = current && current.step === run.step && current.phase === run.phase;
    return el("li", { className: `step-${inHand ? "current" : "done"} step-${run.phase}` },
      run.phase === "forward" ? run.step : `${run.step} (${run.phase.replace("_", " ")})`, " ",
      badge(inHand ? current.state : last.result.outcome));
  });
  for (const step of timeline.upcoming) itinerary.push(el("li", { className: "step-upcoming" }, step));
  for (const step of timeline.after_compensation) itinerary.push(el("li", { className: "step-upcoming" }, `${step} (after compensation)`));
  $("#timeline-itinerary").replaceChildren(...itinerary);

  $("#timeline-attempts").replaceChildren(...timeline.steps.flatMap((run) => run.attempts.map((attempt) => {
    const result = attempt.result;
    const why = result.reason ? `: ${result.reason}${result.transient ? " (transient)" : ""}` : "";
    return el("tr", { "data-step": run.step, "data-phase": run.phase },
      el("td", {}, run.step), el("td", {}, run.phase), el("td", {}, attempt.attempt),
      el("td", {}, when(attempt.started_at)), el("td", {}, when(attempt.finished_at)),
      el("td", {}, badge(result.outcome), why));
  })));

  const compensations = timeline.compensations.map((entry) => el("tr", {},
    el("td", {}, entry.name), el("td", {}, entry.for_step), el("td", {}, entry.uncertain ? "yes" : "no"),
    el("td", {}, when(entry.registered_at)), el("td", {}, badge(entry.state)), el("td", {}, when(entry.done_at))));
  $("#timeline-compensations").replaceChildren(...(compensations.length ? compensations
    : [el("tr", {}, el("td", { colspan: 6, className: "empty" }, "Nothing to undo."))]));

  $("#timeline-variables").textContent = JSON.stringify(timeline.variables, null, 2);
}

async function act(action) {
  const sagaId = openSaga;
  if (!sagaId) return;
  const question = action === "retry"
    ? `Retry saga ${sagaId}? Its parked step gets a fresh budget of attempts.`
    : `Compensate saga ${sagaId}? Everything it did is undone; a sent confirmation is followed by a correction.`;
  if (!(await confirmAction(question))) {
    say($("#action-result"), `${action === "retry" ? "Retry" : "Compensation"} not sent.`);
    return;
  }
  try {
    const slip = await (action === "retry" ? api.retry(sagaId) : api.compensate(sagaId));
    say($("#action-result"), `${action === "retry" ? "Retry" : "Compensation"} accepted: the saga is ${slip.status}.`);
  } catch (error) {
    say($("#action-result"), describe(error), true);
  }
  await refreshTimeline();
  await searchSagas();
}

$("#action-retry").addEventListener("click", () => act("retry"));
$("#action-compensate").addEventListener("click", () => act("compensate"));
$("#timeline-close").addEventListener("click", () => {
  openSaga = null;
  clearTimeout(refreshTimer);
  $("#timeline").hidden = true;
});

// ----------------------------------------------------------- dead letters

async function showDeadLetters() {
  const service = $("#dead-letter-service").value;
  const rows = $("#dead-letter-rows");
  try {
    const list = await api.deadLetters(service, $("#dead-letter-status").value);
    rows.replaceChildren(...list.items.map((letter) => deadLetterRow(service, letter)));
    if (list.items.length === 0) {
      rows.append(el("tr", {}, el("td", { colspan: 8, className: "empty" }, `No dead letters in ${service}.`)));
    }
  } catch (error) {
    rows.replaceChildren(el("tr", {}, el("td", { colspan: 8, className: "empty error" }, describe(error))));
  }
}

function deadLetterRow(service, letter) {
  const parked = letter.status === "parked";
  const button = (verb) => el("button", {
    type: "button", className: `dead-letter-${verb}`, disabled: !parked,
    onclick: () => disposeDeadLetter(service, letter, verb),
  }, verb === "replay" ? "Replay" : "Discard");
  return el("tr", { "data-dead-letter-id": letter.id, "data-status": letter.status },
    el("td", {}, when(letter.parked_at)), el("td", {}, letter.consumer),
    el("td", {}, `${letter.topic} [${letter.kafka_partition}@${letter.kafka_offset}]`),
    el("td", {}, letter.message_type || "(not an envelope)"), el("td", {}, letter.error),
    el("td", {}, letter.attempts), el("td", {}, badge(letter.status)),
    el("td", { className: "row-actions" }, button("replay"), " ", button("discard")));
}

async function disposeDeadLetter(service, letter, verb) {
  const question = verb === "replay"
    ? `Replay dead letter ${letter.id} (${letter.message_type || "unknown type"}) in ${service}? Its consumer applies it again, once.`
    : `Discard dead letter ${letter.id} in ${service}? It stays on record but is never applied.`;
  const result = $("#dead-letter-result");
  if (!(await confirmAction(question))) {
    say(result, `${verb === "replay" ? "Replay" : "Discard"} not sent.`);
    return;
  }
  try {
    const updated = await (verb === "replay" ? api.replay(service, letter.id) : api.discard(service, letter.id));
    say(result, `Dead letter ${updated.id} is ${updated.status}.`);
  } catch (error) {
    say(result, describe(error), true);
  }
  await showDeadLetters();
}

$("#dead-letter-filters").addEventListener("submit", (event) => {
  event.preventDefault();
  showDeadLetters();
});

// ------------------------------------------------------------------ start

showTokenState();
if (token.get()) searchSagas();
