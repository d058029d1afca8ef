"""The exception tree. Every error a user can cause is a PaperSearchError.

    PaperSearchError
    ├── InvalidInput            a bad record, file or argument
    │   ├── InvalidQuery        an empty, oversized or malformed query
    │   ├── UnknownFormat       an input file whose format cannot be told
    │   └── AmbiguousId         a DOI or arXiv id held by several papers
    ├── PaperNotFound           an id that is not in the index
    ├── IndexNotBuilt           no index in the directory yet
    ├── IndexCorrupt            an index file is missing, truncated or inconsistent
    ├── IndexBusy               another process is writing to the index
    ├── IndexReadOnly           the index cannot be written here (read-only mount, no permission)
    ├── IndexModelMismatch      the index was built with another model
    └── ModelLoadError          the model cannot be found or loaded

The API maps each class to one HTTP status; the CLI prints the message and exits 1.
"""

from __future__ import annotations


class PaperSearchError(Exception):
    """Base class: the message says what happened and what to do next."""


class InvalidInput(PaperSearchError):
    """A record, file or argument that cannot be used as given."""


class InvalidQuery(InvalidInput):
    """A query that is empty, too long or otherwise unusable."""


class UnknownFormat(InvalidInput):
    """An input file whose format cannot be detected."""


class AmbiguousId(InvalidInput):
    """A DOI or arXiv id given for one paper that several stored papers hold."""

    def __init__(self, given: str, paper_ids: list[str]):
        self.given = given
        self.paper_ids = list(paper_ids)
        shown = ", ".join(repr(p) for p in self.paper_ids[:10])
        super().__init__(f"{given!r} is ambiguous: {len(self.paper_ids)} papers have it ({shown}). "
                         "Give one of their paper ids instead.")


class PaperNotFound(PaperSearchError):
    """One or more paper ids are not in the index."""

    def __init__(self, paper_ids: list[str] | str):
        self.paper_ids = [paper_ids] if isinstance(paper_ids, str) else list(paper_ids)
        shown = ", ".join(repr(p) for p in self.paper_ids[:10])
        more = f" (and {len(self.paper_ids) - 10} more)" if len(self.paper_ids) > 10 else ""
        super().__init__(f"Unknown paper id: {shown}{more}. Check the id with 'papersearch search'.")


class IndexNotBuilt(PaperSearchError):
    """The index directory holds no index yet."""


class IndexCorrupt(PaperSearchError):
    """An index file is missing, truncated or disagrees with the others."""


class IndexBusy(PaperSearchError):
    """Another process holds the index's write lock."""


class IndexReadOnly(PaperSearchError):
    """A write (or an upgrade, or a repair) asked of an index this process cannot write."""


class IndexModelMismatch(PaperSearchError):
    """The index was built with a different model than the one asked for."""


class ModelLoadError(PaperSearchError):
    """The embedding model cannot be located or loaded."""
