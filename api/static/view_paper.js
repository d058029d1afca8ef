// A page per paper: what it is, where it lives, its versions, its related papers, a citation.

import { $, download, el } from "./dom.js";
import { FEEDS, api, serverCapabilities } from "./api.js";
import { announceFeed } from "./view_search.js";
import { cslItems, summary } from "./readinglist.js";
import { opinionButtons, renderList, renderMeta, renderVersions, sourceLinks } from "./render.js";

const PAGE = 10;

function citationButton(paper) {
  const button = el("button", "secondary", "Download citation (CSL-JSON)");
  button.type = "button";
  button.id = "cite-paper";
  button.addEventListener("click", () => {
    const items = cslItems({ like: { [paper.paper_id]: summary(paper) }, dislike: {} });
    download(paper.paper_id.replace(/[^A-Za-z0-9._-]+/g, "_") + ".json", "application/vnd.citationstyles.csl+json",
      JSON.stringify(items, null, 2));
  });
  return button;
}

async function relatedExport(paperId) {
  const caps = await serverCapabilities();
  if (!caps.formats.length) return null;
  const wrap = el("p", "export");
  const label = el("label", null, "Related papers as ");
  const select = el("select");
  select.id = "related-format";
  select.replaceChildren(...caps.formats.map((f) => new Option(f, f)));
  label.appendChild(select);
  wrap.appendChild(label);
  const link = el("a", "button-link", "Download");
  link.id = "related-export";
  link.download = "";
  const update = () => {
    link.href = `/papers/${encodeURIComponent(paperId)}/related?` + new URLSearchParams({ limit: PAGE, format: select.value });
  };
  select.onchange = update;
  update();
  wrap.appendChild(link);
  return wrap;
}

export async function showPaper(paperId, status, goBack) {
  const view = $("paper-view");
  status.textContent = "Loading paper…";
  const paper = await api("/papers/" + encodeURIComponent(paperId));
  const related = await api("/papers/" + encodeURIComponent(paper.paper_id) + "/related", new URLSearchParams({ limit: PAGE }));
  view.replaceChildren();
  const back = el("a", "back", "← Back");
  back.href = "/";
  back.addEventListener("click", goBack);
  view.appendChild(back);
  const title = el("h2", "paper-title", paper.title);
  title.id = "paper-title";
  title.tabIndex = -1;
  view.appendChild(title);
  view.appendChild(renderMeta(paper));
  const actions = el("p", "links");
  for (const link of sourceLinks(paper)) actions.appendChild(link);
  actions.appendChild(opinionButtons(paper));
  view.appendChild(actions);
  view.appendChild(el("p", "abstract", paper.abstract || "(no abstract)"));
  const versions = renderVersions(paper);
  if (versions) view.appendChild(versions);
  const tools = el("div", "tools");
  tools.appendChild(citationButton(paper));
  const exporter = await relatedExport(paper.paper_id);
  if (exporter) tools.appendChild(exporter);
  const caps = await serverCapabilities();
  const feed = caps.feeds.includes("related") ? FEEDS.related(paper.paper_id) : null;
  if (feed) {
    const follow = el("a", "button-link", "Follow related papers (Atom feed)");
    follow.id = "follow-paper";
    follow.href = feed;
    tools.appendChild(follow);
  }
  announceFeed(feed, "New papers related to " + paper.title);
  view.appendChild(tools);
  const heading = el("h3", null, "Related papers");
  heading.id = "related";
  view.appendChild(heading);
  const list = el("ol", "results");
  list.setAttribute("aria-labelledby", "related");
  renderList(list, related.results, false);
  view.appendChild(list);
  status.textContent = `${related.results.length} related papers`;
  document.title = `${paper.title} – PaperSearch`;
  title.focus();
}
