// The search page: reads the URL (?q=... or ?paper=...), calls the JSON API, renders with DOM
// methods only. Text from the index is never parsed as HTML; the one exception is a result's
// snippet, and from it only <mark> tags survive (see markedText).
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const form = $("search-form");
  const box = $("q");
  const modeSelect = $("mode");
  const filterIds = ["year_from", "year_to", "category", "author"];
  const statusLine = $("status");
  const errorBox = $("error");
  const list = $("result-list");
  const paperView = $("paper-view");
  const moreButton = $("more");
  const PAGE = 10;
  let current = null; // {path, params, offset} of the list on screen, for "Show more"
  let inFlight = null;
  let navigatedHere = false; // "Back" returns to our own previous view, never to another site

  // --- small helpers ---------------------------------------------------------------------------

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function decodeEntities(text) {
    const named = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };
    return text.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (whole, name) => {
      if (name[0] === "#") {
        const code = name[1] === "x" || name[1] === "X" ? parseInt(name.slice(2), 16) : parseInt(name.slice(1), 10);
        return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : whole;
      }
      return Object.prototype.hasOwnProperty.call(named, name.toLowerCase()) ? named[name.toLowerCase()] : whole;
    });
  }

  // A snippet is escaped HTML with <mark> around matched terms. Build it as text nodes and <mark>
  // elements: any other tag, even if a server bug let one through, shows up as plain text.
  function markedText(snippet) {
    const fragment = document.createDocumentFragment();
    let target = fragment;
    for (const token of String(snippet).split(/(<\/?mark>)/i)) {
      const lower = token.toLowerCase();
      if (lower === "<mark>" && target === fragment) {
        target = fragment.appendChild(document.createElement("mark"));
      } else if (lower === "</mark>") {
        target = fragment;
      } else if (token) {
        target.appendChild(document.createTextNode(decodeEntities(token)));
      }
    }
    return fragment;
  }

  // Only http(s) links from the index become hrefs: a "javascript:" url must never be clickable.
  function safeUrl(value) {
    try {
      const url = new URL(String(value), window.location.href);
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch (e) {
      return null;
    }
  }

  function paperHref(paperId) {
    return "/?" + new URLSearchParams({ paper: paperId }).toString();
  }

  function authorsText(authors) {
    if (!authors || !authors.length) return "";
    return authors.slice(0, 4).join(", ") + (authors.length > 4 ? " et al." : "");
  }

  async function api(path, params) {
    if (inFlight) inFlight.abort();
    inFlight = new AbortController();
    const query = params ? "?" + params.toString() : "";
    let response;
    try {
      response = await fetch(path + query, { signal: inFlight.signal, headers: { Accept: "application/json" } });
    } catch (e) {
      if (e.name === "AbortError") throw e;
      throw new Error("Cannot reach the PaperSearch server. Is it still running?");
    }
    const body = await response.json().catch(() => null);
    if (!response.ok) {
      const message = body && body.error ? body.error.message : "The server answered " + response.status + ".";
      throw new Error(message);
    }
    return body;
  }

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = !message;
  }

  // --- rendering -------------------------------------------------------------------------------

  function renderMeta(paper) {
    const meta = el("p", "meta");
    const parts = [authorsText(paper.authors), paper.year, paper.venue].filter((x) => x);
    meta.appendChild(document.createTextNode(parts.join(" · ")));
    for (const category of paper.categories || []) {
      meta.appendChild(document.createTextNode(" "));
      meta.appendChild(el("span", "category", category));
    }
    return meta;
  }

  function renderAbstract(hit) {
    const wrap = el("div", "abstract-wrap");
    const text = el("p", "abstract clamped");
    text.id = "abstract-" + Math.random().toString(36).slice(2);
    if (hit.snippet) text.appendChild(markedText(hit.snippet));
    else text.textContent = hit.abstract || "(no abstract)";
    wrap.appendChild(text);
    if (hit.snippet && hit.abstract) {
      const full = el("details", "full-abstract");
      full.appendChild(el("summary", null, "Full abstract"));
      full.appendChild(el("p", null, hit.abstract));
      wrap.appendChild(full);
    } else if ((hit.abstract || "").length > 320) {
      const toggle = el("button", "toggle", "Show full abstract");
      toggle.type = "button";
      toggle.setAttribute("aria-expanded", "false");
      toggle.setAttribute("aria-controls", text.id);
      toggle.addEventListener("click", () => {
        const open = text.classList.toggle("clamped") === false;
        toggle.setAttribute("aria-expanded", String(open));
        toggle.textContent = open ? "Show less" : "Show full abstract";
      });
      wrap.appendChild(toggle);
    }
    return wrap;
  }

  function renderHit(hit) {
    const item = el("li", "result");
    const article = el("article");
    const heading = el("h2", "title");
    const link = el("a", "internal", hit.title);
    link.href = paperHref(hit.paper_id);
    heading.appendChild(link);
    article.appendChild(heading);
    article.appendChild(renderMeta(hit));
    article.appendChild(renderAbstract(hit));
    const links = el("p", "links");
    const related = el("a", "internal related", "Related papers");
    related.href = paperHref(hit.paper_id);
    related.setAttribute("aria-label", "Papers related to " + hit.title);
    links.appendChild(related);
    const source = safeUrl(hit.url) || (hit.doi ? safeUrl("https://doi.org/" + hit.doi) : null);
    if (source) {
      const out = el("a", null, "Source");
      out.href = source;
      out.rel = "noopener noreferrer nofollow";
      links.appendChild(out);
    }
    links.appendChild(el("span", "score", "score " + Number(hit.score).toFixed(3)));
    article.appendChild(links);
    item.appendChild(article);
    return item;
  }

  function renderList(target, results, append) {
    if (!append) target.replaceChildren();
    for (const hit of results) target.appendChild(renderHit(hit));
  }

  // --- views -----------------------------------------------------------------------------------

  function formParams() {
    const params = new URLSearchParams();
    params.set("q", box.value.trim());
    if (modeSelect.value) params.set("mode", modeSelect.value);
    for (const id of filterIds) {
      const value = $(id).value.trim();
      if (value) params.set(id, value);
    }
    return params;
  }

  function fillForm(params) {
    box.value = params.get("q") || "";
    const mode = params.get("mode");
    if (mode && ![...modeSelect.options].some((o) => o.value === mode)) modeSelect.add(new Option(mode, mode));
    if (mode) modeSelect.value = mode;
    let filtered = false;
    for (const id of filterIds) {
      $(id).value = params.get(id) || "";
      filtered = filtered || Boolean(params.get(id));
    }
    if (filtered) $("options").open = true;
  }

  async function showSearch(params, append) {
    paperView.hidden = true;
    paperView.replaceChildren();
    const offset = append ? current.offset + PAGE : 0;
    const query = new URLSearchParams(params);
    query.set("limit", PAGE);
    query.set("offset", offset);
    statusLine.textContent = append ? "Loading more…" : "Searching…";
    const page = await api("/search", query);
    renderList(list, page.results, append);
    current = { params, offset };
    moreButton.hidden = page.next_offset === null;
    const shown = offset + page.results.length;
    statusLine.textContent = shown
      ? `${shown} result${shown === 1 ? "" : "s"} for “${page.query}” (${page.mode}, ${Math.round(page.took_ms)} ms)`
      : `No results for “${page.query}”. Try other words or fewer filters.`;
    document.title = `${page.query} – PaperSearch`;
  }

  async function showPaper(paperId) {
    list.replaceChildren();
    moreButton.hidden = true;
    statusLine.textContent = "Loading paper…";
    const paper = await api("/papers/" + encodeURIComponent(paperId));
    const related = await api("/papers/" + encodeURIComponent(paperId) + "/related", new URLSearchParams({ limit: PAGE }));
    paperView.replaceChildren();
    const back = el("a", "back", "← Back");
    back.href = "/";
    back.addEventListener("click", (event) => {
      if (navigatedHere) {
        event.preventDefault();
        window.history.back();
      }
    });
    paperView.appendChild(back);
    const title = el("h2", "paper-title", paper.title);
    title.id = "paper-title";
    title.tabIndex = -1;
    paperView.appendChild(title);
    paperView.appendChild(renderMeta(paper));
    paperView.appendChild(el("p", "abstract", paper.abstract || "(no abstract)"));
    const source = safeUrl(paper.url) || (paper.doi ? safeUrl("https://doi.org/" + paper.doi) : null);
    if (source) {
      const out = el("a", null, "Source");
      out.href = source;
      out.rel = "noopener noreferrer nofollow";
      paperView.appendChild(out);
    }
    const heading = el("h3", null, "Related papers");
    heading.id = "related";
    paperView.appendChild(heading);
    const relatedList = el("ol", "results");
    relatedList.setAttribute("aria-labelledby", "related");
    renderList(relatedList, related.results, false);
    paperView.appendChild(relatedList);
    paperView.hidden = false;
    statusLine.textContent = `${related.results.length} related papers`;
    document.title = `${paper.title} – PaperSearch`;
    title.focus();
  }

  async function route() {
    const params = new URLSearchParams(window.location.search);
    showError("");
    fillForm(params);
    try {
      if (params.get("paper")) await showPaper(params.get("paper"));
      else if (params.get("q")) await showSearch(params, false);
      else {
        list.replaceChildren();
        paperView.hidden = true;
        moreButton.hidden = true;
        statusLine.textContent = "";
        document.title = "PaperSearch";
      }
    } catch (e) {
      if (e.name === "AbortError") return;
      statusLine.textContent = "";
      showError(e.message);
    }
  }

  function navigate(url) {
    navigatedHere = true;
    window.history.pushState(null, "", url);
    route();
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

  moreButton.addEventListener("click", async () => {
    try {
      await showSearch(current.params, true);
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

  // The modes this server offers (dense today; lexical and hybrid when built in).
  fetch("/stats")
    .then((r) => (r.ok ? r.json() : null))
    .then((stats) => {
      if (!stats || !Array.isArray(stats.modes)) return;
      const asked = new URLSearchParams(window.location.search).get("mode");
      modeSelect.replaceChildren(...stats.modes.map((m) => new Option(m, m)));
      const chosen = stats.modes.includes(asked) ? asked : stats.default_mode;
      if (stats.modes.includes(chosen)) modeSelect.value = chosen;
    })
    .catch(() => {});

  route();
})();
