// DOM helpers shared by the page's views. Text from the index is only ever set with textContent;
// the one exception is a snippet, and from it only <mark> tags survive (markedText).

export const $ = (id) => document.getElementById(id);

export function el(tag, className, text) {
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
export function markedText(snippet) {
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
export function safeUrl(value) {
  try {
    const url = new URL(String(value), window.location.href);
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
  } catch (e) {
    return null;
  }
}

export function paperHref(paperId) {
  return "/paper/" + encodeURIComponent(paperId).replace(/%2F/gi, "/");
}

export function authorsText(authors, most = 4) {
  if (!authors || !authors.length) return "";
  return authors.slice(0, most).join(", ") + (authors.length > most ? " et al." : "");
}

export function externalLink(text, href, label) {
  const link = el("a", null, text);
  link.href = href;
  link.rel = "noopener noreferrer nofollow";
  if (label) link.setAttribute("aria-label", label);
  return link;
}

// A file the browser saves (blob: URLs are navigations, which the page's CSP allows).
export function download(filename, type, text) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const link = el("a");
  link.href = url;
  link.download = filename;
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
