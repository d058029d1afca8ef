/* PaperSearch "Related papers" widget. On an article page, with no configuration:
 *
 *   <script src="https://HOST/widget.js" async></script>
 *
 * reads the page's own scholarly meta tags (Highwire citation_doi, citation_arxiv_id,
 * citation_title, citation_abstract; Dublin Core DC.identifier; OpenGraph og:title), finds the
 * paper by DOI or arXiv id, or else asks for papers related to its title and abstract, and never
 * lists the page's own paper. Data attributes override what the page says:
 *   data-paper-id, data-doi, data-arxiv-id, data-paper-title, data-text (the abstract),
 *   data-query (a search instead, with data-mode), data-limit (5), data-theme ("auto" | "light" |
 *   "dark"), data-title (the heading), data-target ("#css-id" to render into), data-api (another
 *   PaperSearch origin). docs/widget.md has the whole list.
 * It renders inside a shadow root (the host page's CSS and the widget's never meet), only once
 * it scrolls into view, with the server's /static/widget.css; theme it with CSS custom properties
 * (see widget.css). Single-page apps call PaperSearchWidget.render() after changing the page.
 * Text from the index is only ever set with textContent. No cookies, no tracking.
 */
(function () {
  "use strict";

  var DONE = "data-papersearch-done";
  // Each <script> tag runs this file again: the first run draws them all and owns the API.
  if (window.PaperSearchWidget && window.PaperSearchWidget.renderNew) {
    window.PaperSearchWidget.renderNew();
    return;
  }
  var hosts = []; // [{script, host}] rendered so far, for PaperSearchWidget.render()

  function widgetScripts() {
    return Array.prototype.slice.call(document.querySelectorAll('script[src*="widget.js"]'))
      .filter(function (s) { return /\/widget\.js(\?|#|$)/.test(s.src); });
  }

  // --- what the page says about its paper ---------------------------------------------------

  function metaValues(names) {
    var wanted = names.map(function (n) { return n.toLowerCase(); });
    var out = [];
    var tags = document.getElementsByTagName("meta");
    for (var i = 0; i < tags.length; i++) {
      var key = (tags[i].getAttribute("name") || tags[i].getAttribute("property") || "").toLowerCase();
      var value = (tags[i].getAttribute("content") || "").trim();
      if (value && wanted.indexOf(key) >= 0) out.push({ key: key, value: value });
    }
    out.sort(function (a, b) { return wanted.indexOf(a.key) - wanted.indexOf(b.key); });
    return out.map(function (m) { return m.value; });
  }

  var DOI = /^(?:doi:\s*|https?:\/\/(?:dx\.)?doi\.org\/)?(10\.\d{4,9}\/\S+)$/i;
  var ARXIV = /^(?:arxiv:\s*|https?:\/\/arxiv\.org\/abs\/)?((?:\d{4}\.\d{4,5}|[a-z-]+(?:\.[A-Z]{2})?\/\d{7})(?:v\d+)?)$/i;

  function firstMatch(values, pattern, loose) {
    for (var i = 0; i < values.length; i++) {
      var found = pattern.exec(values[i]);
      if (found && (loose || values[i] === found[0])) return found[1];
    }
    return null;
  }

  function pageFacts() {
    var identifiers = metaValues(["dc.identifier", "dc.identifier.doi", "prism.doi"]);
    return {
      doi: firstMatch(metaValues(["citation_doi"]), DOI, true) || firstMatch(identifiers, DOI, true),
      arxivId: firstMatch(metaValues(["citation_arxiv_id"]), ARXIV, true) ||
        firstMatch(identifiers.filter(function (v) { return /arxiv/i.test(v); }), ARXIV, true),
      title: metaValues(["citation_title", "dc.title", "og:title"])[0] || "",
      text: metaValues(["citation_abstract", "dc.description", "og:description"])[0] || "",
    };
  }

  function settings(script) {
    var data = script.dataset;
    var facts = data.paperId || data.query ? {} : pageFacts();
    return {
      paperId: data.paperId || null,
      query: data.query || null,
      doi: data.doi || facts.doi || null,
      arxivId: data.arxivId || facts.arxivId || null,
      mode: data.mode || null,
      title: data.paperTitle || facts.title || "",
      text: data.text || facts.text || "",
      limit: Math.min(Math.max(parseInt(data.limit, 10) || 5, 1), 50),
      theme: /^(light|dark|auto)$/.test(data.theme || "") ? data.theme : "auto",
      heading: data.title || "Related papers",
      target: data.target || null,
      base: (data.api || new URL(script.src, document.baseURI).origin).replace(/\/+$/, ""),
    };
  }

  // --- asking PaperSearch ---------------------------------------------------------------------

  function getJson(url, init) {
    return fetch(url, init || { headers: { Accept: "application/json" } }).then(function (response) {
      if (response.status === 404) return null; // an unknown paper: quietly nothing
      return response.json().then(function (body) {
        if (!response.ok) throw new Error(body && body.error ? body.error.message : "HTTP " + response.status);
        return body;
      });
    });
  }

  function normalTitle(title) {
    return String(title || "").toLowerCase().replace(/[^a-z0-9]+/g, " ").trim();
  }

  function relatedOf(base, paperId, limit) {
    var params = new URLSearchParams({ limit: String(limit) });
    return getJson(base + "/papers/" + encodeURIComponent(paperId) + "/related?" + params);
  }

  // The page's paper by DOI, then by arXiv id; null when the index has neither.
  function findPaper(base, ids) {
    if (!ids.length) return Promise.resolve(null);
    return getJson(base + "/papers/" + encodeURIComponent(ids[0])).then(function (paper) {
      return paper || findPaper(base, ids.slice(1));
    });
  }

  function results(config) {
    var base = config.base;
    if (config.paperId) return relatedOf(base, config.paperId, config.limit);
    if (config.query) {
      // The widget lists titles, authors and years: snippets would be computed for nothing.
      var search = new URLSearchParams({ q: config.query, limit: String(config.limit), snippets: "false" });
      if (config.mode) search.set("mode", config.mode);
      return getJson(base + "/search?" + search);
    }
    var ids = [config.doi, config.arxivId].filter(Boolean);
    return findPaper(base, ids).then(function (paper) {
      if (paper) return relatedOf(base, paper.paper_id, config.limit);
      var text = (config.title + "\n" + config.text).trim().slice(0, 4000);
      if (!text) return null;
      var init = { method: "POST", headers: { Accept: "application/json", "Content-Type": "application/json" },
                   body: JSON.stringify({ text: text, limit: config.limit + 1 }) };
      return getJson(base + "/related", init).then(function (page) {
        if (!page) return null;
        var own = normalTitle(config.title);
        var mine = ids.map(function (i) { return i.toLowerCase(); });
        page.results = page.results.filter(function (hit) {
          return !(own && normalTitle(hit.title) === own) && mine.indexOf(String(hit.doi || "").toLowerCase()) < 0;
        }).slice(0, config.limit);
        return page;
      });
    });
  }

  // --- drawing --------------------------------------------------------------------------------

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function safeUrl(value) {
    try {
      var url = new URL(String(value));
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch (e) {
      return null;
    }
  }

  function fill(box, status, config, page) {
    if (!page || !page.results.length) {
      status.textContent = "No related papers found.";
      return;
    }
    var list = el("ol");
    page.results.forEach(function (hit) {
      var item = el("li");
      var link = el("a", null, hit.title);
      link.href = safeUrl(hit.url) || config.base + "/paper/" + encodeURIComponent(hit.paper_id);
      link.rel = "noopener";
      item.appendChild(link);
      var authors = (hit.authors || []).slice(0, 3).join(", ") + ((hit.authors || []).length > 3 ? " et al." : "");
      var meta = [authors, hit.year].filter(function (x) { return x; }).join(" · ");
      if (meta) item.appendChild(el("span", "meta", meta));
      list.appendChild(item);
    });
    box.replaceChild(list, status);
    var foot = el("p", "foot");
    var home = el("a", null, "PaperSearch");
    home.href = config.base + "/";
    foot.appendChild(document.createTextNode("Found by "));
    foot.appendChild(home);
    box.appendChild(foot);
  }

  function hostFor(script, config) {
    var known = hosts.filter(function (h) { return h.script === script; })[0];
    if (known) return known.host;
    var host = config.target ? document.querySelector(config.target) : null;
    if (!host) {
      host = document.createElement("div");
      script.parentNode.insertBefore(host, script.nextSibling);
    }
    host.classList.add("papersearch-widget");
    hosts.push({ script: script, host: host });
    return host;
  }

  // Only once the widget nears the screen: an article page's reader may never scroll that far.
  function whenVisible(host, start) {
    if (!("IntersectionObserver" in window)) return start();
    var observer = new IntersectionObserver(function (entries) {
      if (entries.some(function (e) { return e.isIntersecting; })) {
        observer.disconnect();
        start();
      }
    }, { rootMargin: "200px" });
    observer.observe(host);
  }

  function render(script) {
    script.setAttribute(DONE, "");
    var config = settings(script);
    var host = hostFor(script, config);
    var root = host.shadowRoot || host.attachShadow({ mode: "open" });
    var style = el("link");
    style.rel = "stylesheet";
    style.href = config.base + "/static/widget.css";
    var box = el("section", "box");
    box.setAttribute("data-theme", config.theme);
    box.setAttribute("aria-labelledby", "papersearch-heading");
    var heading = el("h2", null, config.heading);
    heading.id = "papersearch-heading";
    box.appendChild(heading);
    var status = el("p", "note", "Loading…");
    status.setAttribute("role", "status");
    box.appendChild(status);
    root.replaceChildren(style, box);
    host.setAttribute("data-state", "waiting");
    whenVisible(host, function () {
      host.setAttribute("data-state", "loading");
      results(config).then(function (page) {
        fill(box, status, config, page);
        host.setAttribute("data-state", "done");
      }).catch(function (error) {
        status.textContent = "Related papers are unavailable right now.";
        host.setAttribute("data-state", "failed");
        if (window.console) console.warn("PaperSearch widget:", error.message);
      });
    });
  }

  function renderNew() {
    widgetScripts().forEach(function (script) {
      if (!script.hasAttribute(DONE)) render(script);
    });
  }

  window.PaperSearchWidget = {
    // Draw every widget on the page again, reading the meta tags afresh (after an SPA navigation).
    render: function () {
      widgetScripts().forEach(render);
    },
    renderNew: renderNew,
  };
  renderNew();
})();
