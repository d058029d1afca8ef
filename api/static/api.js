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

// The export formats' names when the schema lists no enum (the formats branch describes them in words).
const DEFAULT_FORMATS = ["bibtex", "ris", "csl-json", "csv", "jsonl"];

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

// Atom feeds: a search's, a paper's related papers', a reading list's (positive=, negative=).
export const FEEDS = {
  search: () => "/feeds/search.atom",
  related: (paperId) => "/feeds/related/" + encodeURIComponent(paperId) + ".atom",
  recommend: () => "/feeds/recommend.atom",
};
const FEED_ROUTES = { search: /^\/feeds\/search\./, related: /^\/feeds\/related\//, recommend: /^\/feeds\/recommend\./ };

// Which feeds the schema lists ("/feeds/search.{fmt}" or "/feeds/search.atom"); without a schema,
// a HEAD on the search feed that is not a 404. (The schema is asked first: a 404 logs a console
// error on every page of a server without feeds.)
async function feedKinds(openapi) {
  if (openapi && openapi.paths) {
    const paths = Object.keys(openapi.paths);
    return Object.keys(FEED_ROUTES).filter((kind) => paths.some((path) => FEED_ROUTES[kind].test(path)));
  }
  try {
    return (await fetch(FEEDS.search() + "?q=papersearch", { method: "HEAD" })).status !== 404 ? ["search"] : [];
  } catch (e) {
    return [];
  }
}

let capabilities = null;

// {formats: [...] | [], minScore: bool, feeds: [kinds], exportList: bool, stats}
export function serverCapabilities() {
  if (capabilities) return capabilities;
  const spec = fetch("/openapi.json").then((r) => (r.ok ? r.json() : null)).catch(() => null);
  const stats = fetch("/stats").then((r) => (r.ok ? r.json() : null)).catch(() => null);
  capabilities = Promise.all([spec, stats]).then(async ([openapi, stat]) => {
    const format = parameterOf(openapi, "/search", "get", "format");
    return {
      formats: format ? enumOf(format) || DEFAULT_FORMATS : [],
      minScore: Boolean(parameterOf(openapi, "/search", "get", "min_score")),
      feeds: await feedKinds(openapi),
      exportList: Boolean(openapi && openapi.paths && openapi.paths["/export"] && openapi.paths["/export"].post),
      stats: stat,
    };
  });
  return capabilities;
}
