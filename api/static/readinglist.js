// The reading list: liked and disliked papers, kept in this browser (localStorage), shareable as
// a link that carries the list in its fragment (never sent to any server), exported as CSL-JSON
// (what Zotero, Mendeley and JabRef import, and what `papersearch recommend --library` reads).

const KEY = "papersearch.readingList.v1";
const listeners = new Set();

function empty() {
  return { like: {}, dislike: {} };
}

export function load() {
  try {
    const stored = JSON.parse(window.localStorage.getItem(KEY) || "null");
    if (stored && typeof stored.like === "object" && typeof stored.dislike === "object") return stored;
  } catch (e) {
    /* a damaged entry: start again */
  }
  return empty();
}

function save(list) {
  window.localStorage.setItem(KEY, JSON.stringify(list));
  for (const listener of listeners) listener(list);
}

export function onChange(listener) {
  listeners.add(listener);
}

// What is kept of a paper: enough to list and cite it without asking the server again.
export function summary(paper) {
  return {
    title: paper.title, authors: paper.authors || [], year: paper.year ?? null, venue: paper.venue || null,
    doi: paper.doi || null, url: paper.url || null, abstract: paper.abstract || "",
  };
}

export function opinion(paperId) {
  const list = load();
  if (paperId in list.like) return "like";
  if (paperId in list.dislike) return "dislike";
  return null;
}

// Like or dislike a paper; the same choice again takes it back.
export function toggle(paper, choice) {
  const list = load();
  const was = opinion(paper.paper_id);
  delete list.like[paper.paper_id];
  delete list.dislike[paper.paper_id];
  if (was !== choice) list[choice][paper.paper_id] = summary(paper);
  save(list);
  return was === choice ? null : choice;
}

export function remove(paperId) {
  const list = load();
  delete list.like[paperId];
  delete list.dislike[paperId];
  save(list);
}

export function clear() {
  save(empty());
}

// Merge a shared list into this browser's one (the shared opinion wins for a paper in both).
export function merge(shared) {
  const list = load();
  for (const choice of ["like", "dislike"]) {
    const other = choice === "like" ? "dislike" : "like";
    for (const [paperId, paper] of Object.entries(shared[choice])) {
      delete list[other][paperId];
      list[choice][paperId] = paper;
    }
  }
  save(list);
}

// --- sharing ---------------------------------------------------------------------------------

export function shareUrl(list) {
  const params = new URLSearchParams();
  for (const paperId of Object.keys(list.like)) params.append("like", paperId);
  for (const paperId of Object.keys(list.dislike)) params.append("dislike", paperId);
  return window.location.origin + "/list#" + params.toString();
}

// The ids of a shared list in a fragment, or null when the fragment holds none.
export function sharedIds(hash) {
  const params = new URLSearchParams(String(hash || "").replace(/^#/, ""));
  const like = params.getAll("like").filter(Boolean);
  const dislike = params.getAll("dislike").filter(Boolean);
  return like.length || dislike.length ? { like, dislike } : null;
}

// --- export ----------------------------------------------------------------------------------

// CSL-JSON items (https://citeproc-js.readthedocs.io/en/latest/csl-json/markup.html).
export function cslItems(list) {
  const items = [];
  for (const [paperId, paper] of Object.entries(list.like)) {
    const item = { id: paperId, type: "article", title: paper.title };
    if (paper.authors && paper.authors.length) item.author = paper.authors.map((name) => cslName(name));
    if (paper.year) item.issued = { "date-parts": [[paper.year]] };
    if (paper.venue) item["container-title"] = paper.venue;
    if (paper.doi) item.DOI = paper.doi;
    if (paper.url) item.URL = paper.url;
    if (paper.abstract) item.abstract = paper.abstract;
    items.push(item);
  }
  return items;
}

function cslName(name) {
  const parts = String(name).trim().split(/\s+/);
  if (parts.length < 2) return { literal: String(name) };
  return { family: parts[parts.length - 1], given: parts.slice(0, -1).join(" ") };
}
