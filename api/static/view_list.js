// The reading list: what was liked and disliked, "Recommended from your list" (POST /recommend),
// export, and a link that opens the same list in another browser.

import { $, download, el, paperHref } from "./dom.js";
import { FEEDS, api, serverCapabilities } from "./api.js";
import { announceFeed } from "./view_search.js";
import * as readingList from "./readinglist.js";
import { renderList } from "./render.js";

const PAGE = 10;

function renderEntries(choice, entries, editable) {
  const section = el("section", "list-part");
  const heading = el("h3", null, `${choice === "like" ? "Liked" : "Disliked"} (${Object.keys(entries).length})`);
  heading.id = "list-" + choice;
  section.appendChild(heading);
  const list = el("ul", "saved");
  list.setAttribute("aria-labelledby", heading.id);
  for (const [paperId, paper] of Object.entries(entries)) {
    const item = el("li");
    const link = el("a", "internal", paper.title || paperId);
    link.href = paperHref(paperId);
    item.appendChild(link);
    const bits = [paper.authors && paper.authors[0], paper.year].filter((x) => x);
    if (bits.length) item.appendChild(el("span", "meta", " " + bits.join(" · ")));
    if (editable) {
      const remove = el("button", "toggle remove", "Remove");
      remove.type = "button";
      remove.setAttribute("aria-label", "Remove from list: " + (paper.title || paperId));
      remove.addEventListener("click", () => readingList.remove(paperId));
      item.appendChild(remove);
    }
    list.appendChild(item);
  }
  if (!list.children.length) list.appendChild(el("li", "meta", "None yet."));
  section.appendChild(list);
  return section;
}

function shareControls(list) {
  const wrap = el("div", "share");
  const label = el("label", null, "Link to this list");
  label.htmlFor = "share-url";
  const input = el("input");
  input.id = "share-url";
  input.type = "text";
  input.readOnly = true;
  input.value = readingList.shareUrl(list);
  const copy = el("button", "secondary", "Copy link");
  copy.type = "button";
  copy.addEventListener("click", () => {
    input.select();
    (navigator.clipboard ? navigator.clipboard.writeText(input.value) : Promise.reject()).catch(() => {});
    copy.textContent = "Copied";
  });
  wrap.append(label, input, copy);
  return wrap;
}

// A shared list's papers, looked up by id (unknown ones are listed by id alone).
async function sharedList(ids) {
  const list = { like: {}, dislike: {} };
  for (const choice of ["like", "dislike"]) {
    for (const paperId of ids[choice]) {
      try {
        list[choice][paperId] = readingList.summary(await api("/papers/" + encodeURIComponent(paperId), null, { exclusive: false }));
      } catch (e) {
        list[choice][paperId] = { title: paperId, authors: [], year: null };
      }
    }
  }
  return list;
}

async function recommendations(list, target, status) {
  const positive = Object.keys(list.like);
  target.replaceChildren();
  if (!positive.length) {
    target.appendChild(el("p", "meta", "Like a few papers to get recommendations."));
    return 0;
  }
  const page = await api("/recommend", null, {
    method: "POST", body: { positive, negative: Object.keys(list.dislike), limit: PAGE },
  });
  const results = el("ol", "results");
  results.id = "recommended-list";
  results.setAttribute("aria-labelledby", "recommended");
  renderList(results, page.results, false);
  target.appendChild(results);
  return page.results.length;
}

// With the formats branch: the liked papers in any export format (POST /export); with feeds:
// the list's own feed (/feeds/recommend.atom?positive=...&negative=...).
async function listServerTools(list) {
  const caps = await serverCapabilities();
  const liked = Object.keys(list.like);
  const tools = [];
  if (caps.exportList && caps.formats.length && liked.length) {
    const wrap = el("p", "export");
    const label = el("label", null, "Liked papers as ");
    const select = el("select");
    select.id = "list-format";
    select.replaceChildren(...caps.formats.map((f) => new Option(f, f)));
    label.appendChild(select);
    const button = el("button", "secondary", "Download");
    button.type = "button";
    button.id = "list-server-export";
    button.addEventListener("click", async () => {
      const response = await fetch("/export?" + new URLSearchParams({ format: select.value }), {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ paper_ids: liked }),
      });
      const name = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") || "");
      download(name ? name[1] : "reading-list." + select.value, response.headers.get("Content-Type") || "text/plain",
        await response.text());
    });
    wrap.append(label, button);
    tools.push(wrap);
  }
  const feed = caps.feeds.includes("recommend") && liked.length ? FEEDS.recommend() + "?" + new URLSearchParams(
    [...liked.map((id) => ["positive", id]), ...Object.keys(list.dislike).map((id) => ["negative", id])]) : null;
  if (feed) {
    const follow = el("a", "button-link", "Follow recommendations (Atom feed)");
    follow.id = "follow-list";
    follow.href = feed;
    tools.push(follow);
  }
  announceFeed(feed, "New papers like your reading list");
  return tools;
}

export async function showList(hash, status) {
  const view = $("list-view");
  const ids = readingList.sharedIds(hash);
  const list = ids ? await sharedList(ids) : readingList.load();
  view.replaceChildren();
  const title = el("h2", null, ids ? "A shared reading list" : "Your reading list");
  title.id = "list-title";
  title.tabIndex = -1;
  view.appendChild(title);
  if (ids) {
    const banner = el("p", "banner", "This list came with the link you opened; your own list is unchanged. ");
    const keep = el("button", null, "Add these to my list");
    keep.type = "button";
    keep.id = "keep-shared";
    keep.addEventListener("click", () => {
      readingList.merge(list);
      keep.disabled = true;
      keep.textContent = "Added to your list";
    });
    banner.appendChild(keep);
    view.appendChild(banner);
  }
  const tools = el("div", "tools");
  const exporter = el("button", "secondary", "Export liked papers (CSL-JSON)");
  exporter.type = "button";
  exporter.id = "export-list";
  exporter.disabled = !Object.keys(list.like).length;
  exporter.addEventListener("click", () => download("reading-list.json", "application/vnd.citationstyles.csl+json",
    JSON.stringify(readingList.cslItems(list), null, 2)));
  tools.appendChild(exporter);
  const serverTools = await listServerTools(list);
  for (const tool of serverTools) tools.appendChild(tool);
  if (!ids) {
    const clear = el("button", "secondary", "Clear list");
    clear.type = "button";
    clear.id = "clear-list";
    clear.addEventListener("click", () => readingList.clear());
    tools.appendChild(clear);
  }
  view.appendChild(tools);
  view.appendChild(shareControls(list));
  view.appendChild(renderEntries("like", list.like, !ids));
  view.appendChild(renderEntries("dislike", list.dislike, !ids));
  const heading = el("h3", null, "Recommended from your list");
  heading.id = "recommended";
  view.appendChild(heading);
  const target = el("div");
  view.appendChild(target);
  status.textContent = "Finding recommendations…";
  const count = await recommendations(list, target, status);
  status.textContent = `${Object.keys(list.like).length} liked, ${Object.keys(list.dislike).length} disliked; ${count} recommendations`;
  document.title = "Reading list – PaperSearch";
  title.focus();
}
