// The landing view (what the corpus holds, example queries) and the results view (facets as
// filters, sorting, export and follow when the server offers them).

import { $, el } from "./dom.js";
import { FEEDS, api, serverCapabilities } from "./api.js";
import { renderList } from "./render.js";

const PAGE = 10;
const FACETS = "year,category,venue";
const FACET_NAMES = { year: "Year", category: "Category", venue: "Venue" };
// Parameters that are part of a search (and so of its URL, export and feed).
export const SEARCH_PARAMS = ["q", "mode", "sort", "min_score", "year_from", "year_to", "category", "author"];
let current = null; // {params, offset} of the list on screen, for "Show more"

export async function showLanding(status) {
  const view = $("landing-view");
  status.textContent = "";
  const corpus = await api("/corpus");
  announceFeed(null);
  view.replaceChildren();
  const title = el("h2", null, "What this index holds");
  title.id = "landing-title";
  view.appendChild(title);
  const years = corpus.year_min ? `, published ${corpus.year_min}–${corpus.year_max}` : "";
  view.appendChild(el("p", "corpus-size", `${corpus.papers.toLocaleString("en")} papers${years}.`));
  headedList(view, "top-categories", "Top categories", "chips", corpus.categories, ({ value, count }) => {
    const item = el("li", "chip");
    item.append(el("span", "chip-name", value), " ", el("span", "count", String(count)));
    return item;
  });
  headedList(view, "examples", "Try a search", "examples", corpus.examples, (example) => {
    const item = el("li");
    const link = el("a", "internal", example);
    link.href = "/?" + new URLSearchParams({ q: example });
    item.appendChild(link);
    return item;
  });
  document.title = "PaperSearch";
}

// A heading and the list it names, one item per entry (nothing when there are no entries).
function headedList(view, id, text, className, entries, item) {
  if (!entries.length) return;
  const heading = el("h3", null, text);
  heading.id = id;
  const list = el("ul", className);
  list.setAttribute("aria-labelledby", id);
  for (const entry of entries) list.appendChild(item(entry));
  view.append(heading, list);
}

function withParams(params, changes) {
  const next = new URLSearchParams(params);
  for (const [name, value] of Object.entries(changes)) {
    if (value === null) next.delete(name);
    else next.set(name, value);
  }
  return "/?" + next.toString();
}

// A facet value is a link to the same search with that filter on (or off, when it is on).
function facetLink(name, value, count, params) {
  let active;
  let href;
  if (name === "year") {
    active = params.get("year_from") === String(value) && params.get("year_to") === String(value);
    href = withParams(params, active ? { year_from: null, year_to: null } : { year_from: value, year_to: value });
  } else {
    active = params.get("category") === String(value);
    href = withParams(params, { category: active ? null : value });
  }
  const link = el("a", "internal facet-value" + (active ? " active" : ""));
  link.href = href;
  link.append(el("span", "facet-name", String(value)), " ", el("span", "count", String(count)),
    el("span", "visually-hidden", active ? " papers, filter on: select to remove it" : " papers"));
  if (active) link.setAttribute("aria-current", "true");
  return link;
}

function renderFacets(facets, params) {
  const aside = $("facets");
  aside.replaceChildren();
  const shown = Object.entries(facets || {}).filter(([, values]) => values.length);
  aside.hidden = !shown.length;
  if (!shown.length) return;
  const title = el("h2", "facets-title", "Refine");
  title.id = "facets-title";
  aside.appendChild(title);
  for (const [name, values] of shown) {
    const section = el("section", "facet");
    const heading = el("h3", null, FACET_NAMES[name] || name);
    heading.id = "facet-" + name;
    section.appendChild(heading);
    const list = el("ul");
    list.setAttribute("aria-labelledby", heading.id);
    for (const { value, count } of values) {
      const item = el("li");
      if (name === "venue") { // the API has no venue filter: counts only
        item.append(el("span", "facet-name", String(value)), " ", el("span", "count", String(count)));
      } else {
        item.appendChild(facetLink(name, value, count, params));
      }
      list.appendChild(item);
    }
    section.appendChild(list);
    aside.appendChild(section);
  }
}

async function renderTools(params, shown) {
  const caps = await serverCapabilities();
  const search = new URLSearchParams();
  for (const name of SEARCH_PARAMS) if (params.get(name)) search.set(name, params.get(name));
  const exporter = $("export");
  exporter.hidden = !caps.formats.length;
  if (caps.formats.length) {
    const select = $("export-format");
    if (select.options.length !== caps.formats.length) select.replaceChildren(...caps.formats.map((f) => new Option(f, f)));
    const update = () => {
      const query = new URLSearchParams(search);
      query.set("limit", String(Math.max(shown, PAGE)));
      query.set("format", select.value);
      $("export-link").href = "/search?" + query.toString();
    };
    select.onchange = update;
    update();
  }
  const follow = $("follow");
  follow.hidden = !caps.feeds.includes("search");
  if (!follow.hidden) follow.href = FEEDS.search() + "?" + search.toString();
  announceFeed(follow.hidden ? null : follow.getAttribute("href"), "New papers for this search");
}

// The view's feed as <link rel="alternate">, so feed readers and browser add-ons find it.
export function announceFeed(href, title) {
  const old = document.getElementById("feed-alternate");
  if (old) old.remove();
  if (!href) return;
  const link = el("link");
  link.id = "feed-alternate";
  link.rel = "alternate";
  link.type = "application/atom+xml";
  link.title = title;
  link.href = href;
  document.head.appendChild(link);
}

export async function showSearch(params, append, status) {
  const list = $("result-list");
  const offset = append ? current.offset + PAGE : 0;
  const query = new URLSearchParams();
  for (const name of SEARCH_PARAMS) if (params.get(name)) query.set(name, params.get(name));
  query.set("limit", PAGE);
  query.set("offset", offset);
  if (!append) query.set("facets", FACETS);
  status.textContent = append ? "Loading more…" : "Searching…";
  const page = await api("/search", query);
  renderList(list, page.results, append);
  if (!append) renderFacets(page.facets, params);
  current = { params, offset };
  $("more").hidden = page.next_offset === null;
  const shown = offset + page.results.length;
  const order = page.sort === "date" ? ", newest first" : "";
  status.textContent = shown
    ? `${shown} result${shown === 1 ? "" : "s"} for “${page.query}” (${page.mode}${order}, ${Math.round(page.took_ms)} ms)`
    : `No results for “${page.query}”. Try other words or fewer filters.`;
  document.title = `${page.query} – PaperSearch`;
  await renderTools(params, shown);
}

export function showMore(status) {
  return showSearch(current.params, true, status);
}
