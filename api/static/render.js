// How a paper and a ranked hit look, on every view: meta line, abstract, links, versions, and
// the like / dislike buttons that keep the reading list.

import { authorsText, el, externalLink, markedText, paperHref, safeUrl } from "./dom.js";
import * as readingList from "./readinglist.js";

let counter = 0;

export function renderMeta(paper) {
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
  text.id = "abstract-" + ++counter;
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

export function sourceLinks(paper) {
  const links = [];
  const source = safeUrl(paper.url);
  if (source) links.push(externalLink("Source", source, "Source of " + paper.title));
  const doi = paper.doi ? safeUrl("https://doi.org/" + paper.doi) : null;
  if (doi && doi !== source) links.push(externalLink("DOI " + paper.doi, doi));
  return links;
}

// Like / dislike toggles (aria-pressed), kept in sync with the reading list everywhere.
export function opinionButtons(paper) {
  const group = el("span", "opinion");
  group.setAttribute("role", "group");
  group.setAttribute("aria-label", "Reading list");
  const buttons = {};
  for (const [choice, label] of [["like", "Like"], ["dislike", "Dislike"]]) {
    const button = el("button", "opinion-" + choice, label);
    button.type = "button";
    button.dataset.paperId = paper.paper_id;
    button.dataset.choice = choice;
    button.setAttribute("aria-label", label + ": " + paper.title);
    button.addEventListener("click", () => {
      const now = readingList.toggle(paper, choice);
      for (const [name, other] of Object.entries(buttons)) other.setAttribute("aria-pressed", String(now === name));
    });
    buttons[choice] = button;
    group.appendChild(button);
  }
  const current = readingList.opinion(paper.paper_id);
  for (const [name, button] of Object.entries(buttons)) button.setAttribute("aria-pressed", String(current === name));
  return group;
}

// Other versions of the same work (preprint and published), when the server groups them.
export function renderVersions(paper) {
  const versions = Array.isArray(paper.versions) ? paper.versions : [];
  if (!versions.length) return null;
  const wrap = el("div", "versions");
  wrap.appendChild(el("p", "versions-label", versions.length === 1 ? "1 other version:" : versions.length + " versions:"));
  const list = el("ul");
  for (const version of versions) {
    const item = el("li");
    const id = typeof version === "string" ? version : version.paper_id;
    const link = el("a", "internal", typeof version === "string" ? version : version.title || id);
    link.href = paperHref(id);
    item.appendChild(link);
    if (typeof version === "object") {
      const bits = [version.year, version.venue, version.doi].filter((x) => x);
      if (bits.length) item.appendChild(document.createTextNode(" · " + bits.join(" · ")));
    }
    list.appendChild(item);
  }
  wrap.appendChild(list);
  return wrap;
}

export function renderHit(hit) {
  const item = el("li", "result");
  const article = el("article");
  const heading = el("h2", "title");
  const link = el("a", "internal", hit.title);
  link.href = paperHref(hit.paper_id);
  heading.appendChild(link);
  article.appendChild(heading);
  article.appendChild(renderMeta(hit));
  article.appendChild(renderAbstract(hit));
  const versions = renderVersions(hit);
  if (versions) article.appendChild(versions);
  const links = el("p", "links");
  const related = el("a", "internal related", "Related papers");
  related.href = paperHref(hit.paper_id);
  related.setAttribute("aria-label", "Related papers: " + hit.title);
  links.appendChild(related);
  for (const out of sourceLinks(hit)) links.appendChild(out);
  links.appendChild(opinionButtons(hit));
  if (typeof hit.score === "number") links.appendChild(el("span", "score", "score " + hit.score.toFixed(3)));
  article.appendChild(links);
  item.appendChild(article);
  return item;
}

export function renderList(target, results, append) {
  if (!append) target.replaceChildren();
  for (const hit of results) target.appendChild(renderHit(hit));
}
