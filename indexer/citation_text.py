"""The text conventions of reference formats, both ways: LaTeX in BibTeX values and person names.

The readers (indexer/library_formats.py) and the writers (api/result_formats.py) share them, so
an export reads back as what was written: `latex_to_text(latex_escape(t)) == t`, and
`family_given` splits a name the way reading "Family, Given" joins it again.
"""

from __future__ import annotations

import re
from functools import lru_cache

__all__ = ["family_given", "first_last", "latex_escape", "latex_to_text"]

_NAME_PARTICLES = frozenset(("van", "von", "der", "den", "de", "del", "della", "di", "da", "du", "la", "le",
                             "ter", "ten", "dos", "das", "zu", "af", "al", "el", "bin", "ibn"))


# --- LaTeX text, both ways -----------------------------------------------------------------------

# Characters LaTeX (and BibTeX's brace counting) would read as markup, and ligatures that
# pylatexenc turns into typographic characters (-- into an en dash, `` into a quote).
_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "$": r"\$", "%": r"\%", "&": r"\&",
                  "#": r"\#", "_": r"\_", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "`": "{`}"}
_LATEX_ESCAPE = re.compile(r"[\\{}$%&#_~^`]|-(?=-)|'(?=')")
# Without commands, math, ties or ligatures a value's only markup is grouping braces, which print
# nothing: pylatexenc (tens of milliseconds for a title) is needed only past that.
_LATEX_MARKUP = re.compile(r"[\\$~`]|--|''")


def latex_escape(text: str) -> str:
    """Text as a BibTeX value that `latex_to_text` reads back exactly (UTF-8 kept as it is)."""
    return _LATEX_ESCAPE.sub(lambda m: _LATEX_SPECIAL.get(m.group(), m.group() + "{}"), text)


@lru_cache(maxsize=1)
def _latex_decoder():
    from pylatexenc.latex2text import LatexNodes2Text, MacroTextSpec, get_default_latex_context_db

    context = get_default_latex_context_db()
    # pylatexenc's defaults give a modifier letter for \textasciicircum and nothing for \LaTeX.
    context.add_context_category("papersearch", prepend=True, macros=[
        MacroTextSpec("textasciicircum", "^"), MacroTextSpec("LaTeX", "LaTeX"), MacroTextSpec("TeX", "TeX")])
    return LatexNodes2Text(math_mode="text", latex_context=context)


def latex_to_text(value: str) -> str:
    """A BibTeX value as plain Unicode text: accents, braces, commands and math decoded."""
    if not _LATEX_MARKUP.search(value):
        return value.replace("{", "").replace("}", "")
    # A bare ~ is LaTeX's unbreakable space; people mean a space.
    return _latex_decoder().latex_to_text(re.sub(r"(?<!\\)~", " ", value))


# --- names, both ways ----------------------------------------------------------------------------


def family_given(name: str) -> tuple[str, str]:
    """("van Exter", "Martin") for "Martin van Exter": the family name is the last word with the
    lower-case particles before it; the inverse of reading "van Exter, Martin"."""
    words = name.split()
    if len(words) < 2:
        return name.strip(), ""
    start = len(words) - 1
    while start > 1 and words[start - 1].lower() in _NAME_PARTICLES and words[start - 1].islower():
        start -= 1
    return " ".join(words[start:]), " ".join(words[:start])


def first_last(name: str) -> str:
    """"First Last" for "Last, First" (and "Last, Suffix, First" -> "First Last Suffix")."""
    parts = [p.strip() for p in name.split(",")]
    if len(parts) == 2 and all(parts):
        return f"{parts[1]} {parts[0]}"
    if len(parts) == 3 and parts[0] and parts[2]:
        return " ".join(p for p in (parts[2], parts[0], parts[1]) if p)
    return name.strip()
