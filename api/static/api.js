// Calls to the JSON API, and what this server offers. Other parts of PaperSearch add export
// formats (`format=`), a score threshold (`min_score=`) and feeds (/feeds/...); the page shows
// their controls only when the server's own OpenAPI schema (or a HEAD request) says they exist.

let inFlight = null;

export async function api(path, params, options = {}) {
  const { method = "GET", body = null, exclusive = true } = options;
  let signal;
  if (exclusive) {
    if (inFlight) inFlight.abort();
    inFlight = new AbortController();
    signal = inFlight.signal;
  }
  const query = params ? "?" + params.toString() : "";
  const init = { method, signal, headers: { Accept: "application/json" } };
  if (body !== null) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  let response;
  try {
    response = await fetch(path + query, init);
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new Error("Cannot reach the PaperSearch server. Is it still running?");
  }
  const answer = await response.json().catch(() => null);
  if (!response.ok) {
    const error = new Error(answer && answer.error ? answer.error.message : "The server answered " + response.status + ".");
    error.status = response.status;
    throw error;
  }
  return answer;
}

const DEFAULT_FORMATS = ["bibtex", "ris", "csl", "csv", "jsonl"];

function parameterOf(spec, path, method, name) {
  const operation = spec && spec.paths && spec.paths[path] && spec.paths[path][method];
  if (!operation) return null;
  const found = (operation.parameters || []).find((p) => p.name === name);
  if (found) return found;
  return null;
}

function enumOf(parameter) {
  const schema = parameter && parameter.schema;
  if (!schema) return null;
  if (Array.isArray(schema.enum)) return schema.enum;
  for (const option of schema.anyOf || []) if (Array.isArray(option.enum)) return option.enum;
  return null;
}

export const FEED_PATH = "/feeds/search.atom";

// A feed route listed in the schema; one left out of it is found by a HEAD that is not a 404.
// (The schema is asked first: a 404 would log a console error on every page of a server without feeds.)
async function hasFeed(openapi, path) {
  if (openapi && openapi.paths) return path in openapi.paths;
  try {
    return (await fetch(path + "?q=papersearch", { method: "HEAD" })).status !== 404;
  } catch (e) {
    return false;
  }
}

let capabilities = null;

// {formats: [...] | [], minScore: bool, feeds: bool, stats}
export function serverCapabilities() {
  if (capabilities) return capabilities;
  const spec = fetch("/openapi.json").then((r) => (r.ok ? r.json() : null)).catch(() => null);
  const stats = fetch("/stats").then((r) => (r.ok ? r.json() : null)).catch(() => null);
  capabilities = Promise.all([spec, stats]).then(async ([openapi, stat]) => {
    const format = parameterOf(openapi, "/search", "get", "format");
    return {
      formats: format ? enumOf(format) || DEFAULT_FORMATS : [],
      minScore: Boolean(parameterOf(openapi, "/search", "get", "min_score")),
      feeds: await hasFeed(openapi, FEED_PATH),
      stats: stat,
    };
  });
  return capabilities;
}
