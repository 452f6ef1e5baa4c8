// The console's only way to the operator API: every call carries the
// operator's bearer token, and every refusal arrives as a problem+json
// (RFC 9457) turned into an ApiProblem the page can show.

const TOKEN_KEY = "contrail.console.token";

export class ApiProblem extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.type = problem.type || "";
  }
}

export const token = {
  get: () => sessionStorage.getItem(TOKEN_KEY) || "",
  set: (value) => sessionStorage.setItem(TOKEN_KEY, value),
  forget: () => sessionStorage.removeItem(TOKEN_KEY),
};

async function call(method, path, query) {
  const bearer = token.get();
  if (!bearer) {
    throw new ApiProblem(401, { detail: "paste an admin token first" });
  }
  const url = new URL(path, window.location.origin);
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") {
      url.searchParams.set(name, value);
    }
  }
  const response = await fetch(url, {
    method,
    headers: { Authorization: `Bearer ${bearer}`, Accept: "application/json" },
    cache: "no-store",
  });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new ApiProblem(response.status, body);
  }
  return body;
}

const id = (value) => encodeURIComponent(value);

export const api = {
  sagas: (filters) => call("GET", "/sagas", filters),
  timeline: (sagaId) => call("GET", `/sagas/${id(sagaId)}/timeline`),
  retry: (sagaId) => call("POST", `/sagas/${id(sagaId)}/retry`),
  compensate: (sagaId) => call("POST", `/sagas/${id(sagaId)}/compensate`),
  deadLetters: (service, status) =>
    call("GET", `/services/${id(service)}/dead-letters`, { status }),
  replay: (service, deadLetterId) =>
    call("POST", `/services/${id(service)}/dead-letters/${id(deadLetterId)}/replay`),
  discard: (service, deadLetterId) =>
    call("POST", `/services/${id(service)}/dead-letters/${id(deadLetterId)}/discard`),
};
