"""Readers for the shapes corpora are published in, one module per source.

Each module has NAME, `read(path, joins)` (yields raw records and the items in
indexer/sources/base.py) and either `sniff(first_json_record)` or ROOTS (XML root element names),
which indexer/ingest.py uses to tell a file's format. indexer/records.py still decides every field.
"""

from indexer.sources import arxiv_atom, crossref, oai, openalex, pubmed, semantic_scholar
from indexer.sources.base import Delete, Note, Skipped

__all__ = ["JSON_SNIFFERS", "READERS", "XML_ROOTS", "Delete", "Note", "Skipped"]

READERS = {module.NAME: module for module in (openalex, semantic_scholar, crossref, pubmed, arxiv_atom, oai)}
# Tried in this order on a JSON file's first record: the abstracts dataset first (it has no title),
# then the sources whose marks are most specific.
JSON_SNIFFERS = ((semantic_scholar.ABSTRACTS, semantic_scholar.sniff_abstracts), (openalex.NAME, openalex.sniff),
                 (semantic_scholar.NAME, semantic_scholar.sniff), (crossref.NAME, crossref.sniff))
XML_ROOTS = {root: module.NAME for module in (pubmed, arxiv_atom, oai) for root in module.ROOTS}
