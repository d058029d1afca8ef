// The search page: one document, four views chosen by the address (landing `/`, results
// `/?q=...`, a paper `/paper/{id}`, the reading list `/list`), each drawn from the JSON API.

import { $ } from "./dom.js";
import { serverCapabilities } from "./api.js";
import * as readingList from "./readinglist.js";
import { SEARCH_PARAMS, showLanding, showMore, showSearch } from "./view_search.js";
import { showPaper } from "./view_paper.js";
import { showList } from "./view_list.js";

const form = $("search-form");
const box = $("q");
const modeSelect = $("mode");
const statusLine = $("status");
const errorBox = $("error");
const VIEWS = ["landing-view", "search-view", "paper-view", "list-view"];
const FIELDS = SEARCH_PARAMS.filter((name) => name !== "q");
let navigatedHere = false; // "Back" returns to our own previous view, never to another site

function showError(message) {
  errorBox.textContent = message;
  errorBox.hidden = !message;
}

function showView(id) {
  for (const view of VIEWS) $(view).hidden = view !== id;
  for (const link of document.querySelectorAll("nav.views a")) {
    const here = link.getAttribute("href") === (id === "list-view" ? "/list" : "/");
    if (here && id !== "paper-view") link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

function formParams() {
  const params = new URLSearchParams();
  params.set("q", box.value.trim());
  for (const name of FIELDS) {
    const field = $(name);
    if (!field || field.closest("[hidden]")) continue;
    const value = field.value.trim();
    if (value && !(name === "sort" && value === "relevance")) params.set(name, value);
  }
  return params;
}

function fillForm(params) {
  box.value = params.get("q") || "";
  const mode = params.get("mode");
  if (mode && ![...modeSelect.options].some((o) => o.value === mode)) modeSelect.add(new Option(mode, mode));
  if (mode) modeSelect.value = mode;
  $("sort").value = params.get("sort") === "date" ? "date" : "relevance";
  let filtered = false;
  for (const name of ["min_score", "year_from", "year_to", "category", "author"]) {
    $(name).value = params.get(name) || "";
    filtered = filtered || Boolean(params.get(name));
  }
  if (filtered || params.get("sort") === "date") $("options").open = true;
}

async function route() {
  const params = new URLSearchParams(window.location.search);
  const path = window.location.pathname;
  showError("");
  fillForm(params);
  if (params.get("paper")) { // the address the page used before /paper/{id}
    window.history.replaceState(null, "", "/paper/" + encodeURIComponent(params.get("paper")));
    return route();
  }
  try {
    if (path.startsWith("/paper/")) {
      showView("paper-view");
      await showPaper(decodeURIComponent(path.slice("/paper/".length)), statusLine, goBack);
    } else if (path === "/list") {
      showView("list-view");
      await showList(window.location.hash, statusLine);
    } else if (params.get("q")) {
      showView("search-view");
      await showSearch(params, false, statusLine);
    } else {
      showView("landing-view");
      await showLanding(statusLine);
    }
  } catch (e) {
    if (e.name === "AbortError") return;
    statusLine.textContent = "";
    showError(e.message);
  }
}

function goBack(event) {
  if (navigatedHere) {
    event.preventDefault();
    window.history.back();
  }
}

function navigate(url) {
  navigatedHere = true;
  window.history.pushState(null, "", url);
  route();
}

function updateListCount() {
  const list = readingList.load();
  $("list-count").textContent = String(Object.keys(list.like).length + Object.keys(list.dislike).length);
}

// --- wiring ----------------------------------------------------------------------------------

form.addEventListener("submit", (event) => {
  event.preventDefault();
  if (!box.value.trim()) {
    showError("Type a few words to search, such as “lightweight OCR”.");
    box.focus();
    return;
  }
  navigate("/?" + formParams().toString());
});

document.addEventListener("click", (event) => {
  const link = event.target.closest("a.internal");
  if (!link || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  event.preventDefault();
  navigate(link.getAttribute("href"));
});

$("more").addEventListener("click", async () => {
  try {
    await showMore(statusLine);
  } catch (e) {
    if (e.name !== "AbortError") showError(e.message);
  }
});

document.addEventListener("keydown", (event) => {
  const typing = /^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement.tagName);
  if (event.key === "/" && !typing) {
    event.preventDefault();
    box.focus();
    box.select();
  }
});

window.addEventListener("popstate", route);
window.addEventListener("hashchange", () => window.location.pathname === "/list" && route());
readingList.onChange(() => {
  updateListCount();
  if (window.location.pathname === "/list" && !readingList.sharedIds(window.location.hash)) route();
});
window.addEventListener("storage", updateListCount); // another tab changed the list

// The modes this server offers, and the controls other features bring (min_score).
serverCapabilities().then((caps) => {
  $("min-score-field").hidden = !caps.minScore;
  const stats = caps.stats;
  if (!stats || !Array.isArray(stats.modes)) return;
  const asked = new URLSearchParams(window.location.search).get("mode");
  modeSelect.replaceChildren(...stats.modes.map((m) => new Option(m, m)));
  const chosen = stats.modes.includes(asked) ? asked : stats.default_mode;
  if (stats.modes.includes(chosen)) modeSelect.value = chosen;
});

updateListCount();
route();
