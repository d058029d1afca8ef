/* PaperSearch "Related papers" widget.
 *
 *   <script src="http://HOST/widget.js" data-paper-id="ID" data-limit="5" async></script>
 *   <script src="http://HOST/widget.js" data-query="protein folding" async></script>
 *
 * Renders right after its own script tag (or into the element named by data-target="#css-id"),
 * inside a shadow root, so the host page's CSS and the widget's never meet. It calls the API on
 * the origin it was loaded from (or data-api="https://other.host"). Text from the index is only
 * ever set with textContent.
 */
(function () {
  "use strict";

  var DONE = "data-papersearch-done";

  // document.currentScript is null for async and deferred scripts, so fall back to every
  // widget tag not yet handled; one run then serves all the tags on the page.
  function ownScripts() {
    var mine = document.currentScript;
    if (mine && !mine.hasAttribute(DONE)) return [mine];
    var found = document.querySelectorAll('script[src*="widget.js"]');
    var out = [];
    for (var i = 0; i < found.length; i++) {
      if (!found[i].hasAttribute(DONE) && (found[i].dataset.paperId || found[i].dataset.query)) out.push(found[i]);
    }
    return out;
  }

  var STYLE = [
    ":host { all: initial; display: block; }",
    ".box { font: 14px/1.45 system-ui, -apple-system, 'Segoe UI', Roboto, Arial, sans-serif; color: #1d1d1b;",
    "  background: #fff; border: 1px solid #deded6; border-radius: 10px; padding: 12px 14px; max-width: 40rem; }",
    "h2 { font-size: 15px; margin: 0 0 8px; font-weight: 600; }",
    "ol { margin: 0; padding: 0 0 0 1.2em; }",
    "li { margin: 0 0 8px; }",
    "a { color: #1f5fbf; text-decoration: none; }",
    "a:hover { text-decoration: underline; }",
    "a:focus-visible { outline: 2px solid #1f5fbf; outline-offset: 2px; }",
    ".meta { display: block; color: #5c5c57; font-size: 12px; }",
    ".note { color: #5c5c57; margin: 0; }",
    ".foot { margin: 6px 0 0; font-size: 11px; color: #5c5c57; }",
  ].join("\n");

  function el(doc, tag, className, text) {
    var node = doc.createElement(tag);
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

  function endpoint(base, data, limit) {
    var params = new URLSearchParams({ limit: String(limit) });
    if (data.paperId) return base + "/papers/" + encodeURIComponent(data.paperId) + "/related?" + params;
    params.set("q", data.query);
    if (data.mode) params.set("mode", data.mode);
    return base + "/search?" + params;
  }

  function render(script) {
    script.setAttribute(DONE, "");
    var data = script.dataset;
    var base = (data.api || new URL(script.src, document.baseURI).origin).replace(/\/+$/, "");
    var limit = Math.min(Math.max(parseInt(data.limit, 10) || 5, 1), 50);

    var host = data.target ? document.querySelector(data.target) : null;
    if (!host) {
      host = document.createElement("div");
      script.parentNode.insertBefore(host, script.nextSibling);
    }
    host.className = (host.className ? host.className + " " : "") + "papersearch-widget";
    var root = host.shadowRoot || host.attachShadow({ mode: "open" });
    var style = el(document, "style");
    style.textContent = STYLE;
    var box = el(document, "section", "box");
    box.setAttribute("aria-label", data.title || "Related papers");
    box.appendChild(el(document, "h2", null, data.title || "Related papers"));
    var status = el(document, "p", "note", "Loading…");
    status.setAttribute("role", "status");
    box.appendChild(status);
    root.replaceChildren(style, box);
    if (!data.paperId && !data.query) {
      status.textContent = "Set data-paper-id or data-query on the widget's script tag.";
      return;
    }

    fetch(endpoint(base, data, limit), { headers: { Accept: "application/json" } })
      .then(function (response) {
        return response.json().then(function (body) {
          if (!response.ok) throw new Error(body && body.error ? body.error.message : "HTTP " + response.status);
          return body;
        });
      })
      .then(function (page) {
        if (!page.results.length) {
          status.textContent = "No related papers found.";
          return;
        }
        var list = el(document, "ol");
        page.results.forEach(function (hit) {
          var item = el(document, "li");
          var link = el(document, "a", null, hit.title);
          link.href = safeUrl(hit.url) || base + "/?" + new URLSearchParams({ paper: hit.paper_id });
          link.rel = "noopener";
          item.appendChild(link);
          var authors = (hit.authors || []).slice(0, 3).join(", ") + ((hit.authors || []).length > 3 ? " et al." : "");
          var meta = [authors, hit.year].filter(function (x) { return x; }).join(" · ");
          if (meta) item.appendChild(el(document, "span", "meta", meta));
          list.appendChild(item);
        });
        box.replaceChild(list, status);
        var foot = el(document, "p", "foot");
        var home = el(document, "a", null, "PaperSearch");
        home.href = base + "/";
        foot.appendChild(document.createTextNode("Found by "));
        foot.appendChild(home);
        box.appendChild(foot);
      })
      .catch(function (error) {
        status.textContent = "Related papers are unavailable right now.";
        if (window.console) console.warn("PaperSearch widget:", error.message);
      });
  }

  var scripts = ownScripts();
  for (var i = 0; i < scripts.length; i++) {
    if (!scripts[i].hasAttribute(DONE)) render(scripts[i]);
  }
})();
