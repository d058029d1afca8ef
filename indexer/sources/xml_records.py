"""Stream the records of a large XML file (MEDLINE, Atom, OAI-PMH) one element at a time.

The file is cut at its record elements (`<PubmedArticle>`, `<entry>`, `<record>`) and each record
is parsed on its own, so:
- memory holds one record, whatever the file's size;
- a record that is not well-formed (an undeclared entity, a stray `<`) is one rejection naming its
  line, and the records after it are still read (a whole-document parser stops at the first error);
- no record can use a DTD: the prologue holding the DOCTYPE is never given to a parser, and a
  record that declares one is refused. With no DTD there are no entity declarations to expand
  (billion laughs) and no external entities to fetch (XXE), so the C parser is safe here; the
  small envelope (prologue and whatever lies between records) goes through defusedxml.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from indexer.records import Rejection
from indexer.sources.base import DAMAGED, MAX_RECORD_BYTES, Locator, Note, collapse

__all__ = ["XmlRecords", "child", "children", "local_name", "text_of"]

_CHUNK = 1 << 20
_ENVELOPE_LIMIT = 1 << 20  # OAI needs its envelope (token, errors); MEDLINE's is whitespace
_NAMESPACE = re.compile(rb"""\sxmlns(?::[\w.-]+)?\s*=\s*(?:"[^"]*"|'[^']*')""")
_ENCODING = re.compile(rb"""<\?xml[^>]*encoding\s*=\s*["']([\w.-]+)["']""")
_DECLARATION = re.compile(rb"<!(?!\[CDATA\[|--)")
_ENTITY_REF = re.compile(r"&(?!(?:amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);)([\w.:-]+);")
_ERROR_LINE = re.compile(r"line (\d+), column (\d+)")


def local_name(tag: str) -> str:
    """`{namespace}name` -> `name`."""
    return tag.rpartition("}")[2]


def children(element: ET.Element | None, name: str) -> list[ET.Element]:
    """Direct children with this local name (namespaces are told apart by the element, not here)."""
    return [] if element is None else [c for c in element if local_name(c.tag) == name]


def child(element: ET.Element | None, name: str) -> ET.Element | None:
    found = children(element, name)
    return found[0] if found else None


def text_of(element: ET.Element | None) -> str:
    """All text inside an element (inline markup such as <i> or <sub> kept as its text), collapsed."""
    return "" if element is None else collapse("".join(element.itertext()))


class XmlRecords:
    """The record elements of one XML stream, as (location, element) or Rejection; after the
    iteration, `envelope()` parses what lay outside the records (OAI's resumptionToken, errors)."""

    def __init__(self, handle, path: Path | str, tags: tuple[str, ...]):
        self._handle = handle
        self._path = path
        self._locate = Locator(Path(str(path)))
        names = b"|".join(re.escape(t.encode()) for t in tags)
        self._start = re.compile(rb"<(?:([A-Za-z_][\w.-]*):)?(" + names + rb")(?=[\s/>])")
        self._envelope = bytearray()
        self._namespaces = b""
        self._declaration = b""
        self.records = 0

    # --- iteration -------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[tuple[str, ET.Element] | Rejection | Note]:
        # buffer[pos:] is unread; line is the line number at pos. Moving pos (not slicing) keeps a
        # piece of many small records linear to scan.
        buffer, pos, line, eof, seen_first = b"", 0, 1, False, False
        while True:
            match = self._start.search(buffer, pos)
            if match is None:
                if eof:
                    self._keep(buffer[pos:])
                    return
                keep = max(pos, len(buffer) - 256)  # a start tag may be cut by the piece boundary
                line += buffer.count(b"\n", pos, keep)
                self._keep(buffer[pos:keep])
                buffer, eof = self._read(buffer[keep:])
                pos = 0
                if eof is None:
                    yield self._damaged(line)
                    return
                continue
            start = match.start()
            if not seen_first:
                seen_first = True
                yield from self._prologue(bytes(self._envelope) + buffer[pos:start])
            line += buffer.count(b"\n", pos, start)
            self._keep(buffer[pos:start])
            prefix, tag = match.group(1), match.group(2)
            end = self._record_end(buffer, start, prefix, tag)
            while end is None and not eof and len(buffer) - start <= MAX_RECORD_BYTES:
                buffer, eof = self._read(buffer[start:])
                start = 0
                if eof is None:
                    yield self._damaged(line)
                    return
                end = self._record_end(buffer, start, prefix, tag)
            location = self._locate(line)
            self.records += 1
            if end is None:
                why = "is over 64 MiB" if len(buffer) - start > MAX_RECORD_BYTES else "never ends (truncated file?)"
                yield Rejection(location, f"<{tag.decode()}> record {self.records} {why}; the rest is not read")
                return
            yield self._parse(location, line, buffer[start:end], tag.decode())
            line += buffer.count(b"\n", start, end)
            pos = end

    def _read(self, buffer: bytes) -> tuple[bytes, bool | None]:
        """(buffer with the next piece, at end of file); (buffer, None) when the stream is damaged."""
        try:
            block = self._handle.read1(_CHUNK)  # read1: a damaged gzip loses no bytes before the damage
        except DAMAGED:
            return buffer, None
        return buffer + block, not block

    def _damaged(self, line: int) -> Rejection:
        return Rejection(f"{self._path}:{line}", "the compressed file is truncated or damaged; "
                                                 "the records before this point were read")

    def _record_end(self, buffer: bytes, start: int, prefix: bytes | None, tag: bytes) -> int | None:
        close = buffer.find(b">", start)
        if close > 0 and buffer[close - 1:close] == b"/":
            return close + 1  # <record/>: an empty element
        name = (prefix + b":" if prefix else b"") + tag
        found = re.compile(rb"</" + re.escape(name) + rb"\s*>").search(buffer, start)
        return found.end() if found else None

    def _keep(self, outside: bytes) -> None:
        if len(self._envelope) < _ENVELOPE_LIMIT:
            self._envelope += outside[:_ENVELOPE_LIMIT - len(self._envelope)]

    def _prologue(self, prologue: bytes) -> Iterator[Note]:
        """Namespaces and encoding the records inherit; a note when the DOCTYPE declares entities."""
        self._namespaces = b" ".join(dict.fromkeys(m.group().strip() for m in _NAMESPACE.finditer(prologue)))
        encoding = _ENCODING.search(prologue)
        if encoding and encoding.group(1).lower() not in (b"utf-8", b"utf8"):
            self._declaration = b'<?xml version="1.0" encoding="' + encoding.group(1) + b'"?>'
        if b"<!ENTITY" in prologue:
            yield Note(f"{self._path}:1", "the DOCTYPE declares XML entities; they are not expanded (that is how "
                                          "XML bombs work), so a record that uses one is rejected")

    def _parse(self, location: str, line: int, fragment: bytes, tag: str) -> tuple[str, ET.Element] | Rejection:
        if _DECLARATION.search(fragment):
            return Rejection(location, f"<{tag}> record {self.records} holds a DTD declaration (<!...>), "
                                       "which a record may not have; refused")
        wrapped = self._declaration + b"<w " + self._namespaces + b">" + fragment + b"</w>"
        try:
            return location, ET.fromstring(wrapped)[0]
        except ET.ParseError as exc:
            return Rejection(location, f"<{tag}> record {self.records} is not well-formed XML: "
                                       f"{self._explain(exc, fragment, line)}")

    @staticmethod
    def _explain(exc: ET.ParseError, fragment: bytes, line: int) -> str:
        """expat's message with the file's line number, and the entity's name when one is undefined."""
        message = str(exc)
        where = _ERROR_LINE.search(message)
        at = int(where.group(1)) if where else 1
        reason = message.split(":")[0]
        if reason == "undefined entity":
            lines = fragment.decode("utf-8", "replace").split("\n")
            entity = _ENTITY_REF.search(lines[at - 1] if at <= len(lines) else "")
            if entity:
                reason = f"undefined entity &{entity.group(1)};"
        return f"{reason} (line {line + at - 1})"

    # --- what lies outside the records -----------------------------------------------------------

    def envelope(self) -> ET.Element:
        """The document without its records, parsed (defusedxml: it holds the DOCTYPE, if any).

        Raises ET.ParseError or DefusedXmlException when it is not XML, or not safe XML.
        """
        return SafeET.fromstring(bytes(self._envelope))


__all__ += ["DefusedXmlException"]
