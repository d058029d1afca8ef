"""Sources benchmark: parse + map time per published shape next to the embedding time, and memory.

    python -m benchmarks.sources [--records 100000] [--parts 4] [--memory-mb 256] [--workdir DIR]

1. Generates a multi-part set in each source's published shape (OpenAlex snapshot parts, the S2
   papers + abstracts datasets, Crossref public-data parts, MEDLINE update files, arXiv API Atom
   pages, OAI-PMH ListRecords pages in arXiv's format), `--records` in all, split evenly, with
   words drawn from the bundled sample abstracts so texts tokenize like real ones.
2. Reads each format's parts through `indexer.ingest.Inputs` (format detection, framing, the
   source mapping and the one record decoder: everything before embedding) and times it.
3. Measures the bundled model's encode rate on a few hundred of those papers and projects the
   embedding time of each format's records (100k are never embedded), so the split is
   parse+map / embed per format. The issue's target: under 5%.
4. Memory: a child process streams a gzip OpenAlex part and a MEDLINE file of `--memory-mb`/4 and
   of `--memory-mb` MB (uncompressed) and reports its peak RSS; flat means equal for both sizes.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path
from xml.sax.saxutils import escape

from benchmarks.measure import ROOT, Timer, load_average
from benchmarks.tables import Table

FORMATS = ("openalex", "s2", "crossref", "pubmed", "arxiv-atom", "oai")
_ATOM = ('<?xml version="1.0" encoding="UTF-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom" '
         'xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/" xmlns:arxiv="http://arxiv.org/schemas/atom">\n'
         "<title>arXiv Query</title><opensearch:totalResults>{total}</opensearch:totalResults>\n")
_OAI = ('<?xml version="1.0" encoding="UTF-8"?>\n<OAI-PMH xmlns="http://www.openarchives.org/OAI/2.0/">\n'
        '<responseDate>2024-01-01T00:00:00Z</responseDate><request verb="ListRecords" metadataPrefix="arXiv">'
        "http://export.arxiv.org/oai2</request>\n<ListRecords>\n")
_MEDLINE = ('<?xml version="1.0" encoding="utf-8"?>\n<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, '
            '1st January 2025//EN" "https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd">\n<PubmedArticleSet>\n')


class Words:
    """Titles, abstracts and names from the vocabulary of the bundled sample abstracts."""

    def __init__(self, seed: int = 7):
        sample = ROOT / "indexer" / "sample" / "papers.jsonl"
        text = " ".join(json.loads(line).get("abstract", "") for line in sample.read_text().splitlines())
        self.vocabulary = sorted({w.strip(".,;:()") for w in text.split() if w.strip(".,;:()")})
        self.random = random.Random(seed)

    def words(self, low: int, high: int) -> list[str]:
        return self.random.choices(self.vocabulary, k=self.random.randint(low, high))

    def title(self) -> str:
        return " ".join(self.words(6, 14)).capitalize()

    def abstract(self) -> str:
        return " ".join(self.words(120, 240)) + "."

    def names(self) -> list[str]:
        return [f"{self.random.choice('ABCDEFGHJKLMNPRST')}. {w.capitalize()}" for w in self.words(2, 8)]


# --- one record in each published shape ----------------------------------------------------------------


def openalex_work(n: int, w: Words) -> dict:
    words = w.abstract().split()
    inverted: dict[str, list[int]] = {}
    for position, word in enumerate(words):
        inverted.setdefault(word, []).append(position)
    doi = f"10.5555/oa.{n}"
    return {"id": f"https://openalex.org/W{n}", "doi": f"https://doi.org/{doi}", "title": (title := w.title()),
            "display_name": title, "publication_year": 2000 + n % 25, "publication_date": "2020-01-01",
            "ids": {"openalex": f"https://openalex.org/W{n}", "doi": f"https://doi.org/{doi}", "mag": str(n)},
            "language": "en", "type": "article", "is_retracted": False, "is_paratext": False,
            "primary_location": {"is_oa": True, "landing_page_url": f"https://doi.org/{doi}",
                                 "source": {"id": "https://openalex.org/S1", "display_name": "Journal of Tests",
                                            "issn_l": "1234-5678", "type": "journal"}},
            "authorships": [{"author_position": "middle", "author": {"id": f"https://openalex.org/A{n}{i}",
                                                                     "display_name": name, "orcid": None},
                             "institutions": [], "raw_author_name": name} for i, name in enumerate(w.names())],
            "topics": [{"id": f"https://openalex.org/T{i}", "display_name": " ".join(w.words(2, 4)), "score": 0.9}
                       for i in range(3)],
            "concepts": [{"id": f"https://openalex.org/C{i}", "display_name": w.title(), "level": i % 3,
                          "score": 0.5} for i in range(5)],
            "cited_by_count": n % 50, "referenced_works": [f"https://openalex.org/W{n - i}" for i in range(20)],
            "abstract_inverted_index": inverted, "updated_date": "2024-01-01T00:00:00"}


def s2_rows(n: int, w: Words) -> tuple[dict, dict]:
    paper = {"corpusid": n, "externalids": {"DOI": f"10.5555/s2.{n}", "CorpusId": str(n), "MAG": None},
             "url": f"https://www.semanticscholar.org/paper/{n:040x}", "title": w.title(),
             "authors": [{"authorId": str(i), "name": name} for i, name in enumerate(w.names())],
             "venue": "Journal of Tests", "year": 2000 + n % 25, "referencecount": 20, "citationcount": 3,
             "s2fieldsofstudy": [{"category": "Computer Science", "source": "s2-fos-model"}],
             "publicationtypes": ["JournalArticle"], "publicationdate": "2020-01-01",
             "journal": {"name": "Journal of Tests", "volume": "1"}, "updated": "2024-01-01T00:00:00Z"}
    abstract = {"corpusid": n, "openaccessinfo": {"externalids": {}, "license": None, "url": None, "status": None},
                "abstract": w.abstract()}
    return paper, abstract


def crossref_item(n: int, w: Words) -> dict:
    return {"DOI": f"10.5555/cr.{n}", "title": [w.title()], "container-title": ["Journal of Tests &amp; Trials"],
            "issued": {"date-parts": [[2000 + n % 25, 5, 1]]}, "type": "journal-article", "member": "1",
            "prefix": "10.5555", "is-referenced-by-count": 3, "reference-count": 10, "URL": f"https://doi.org/{n}",
            "author": [{"given": name.split()[0], "family": name.split()[-1], "sequence": "additional",
                        "affiliation": []} for name in w.names()],
            "abstract": f"<jats:title>Abstract</jats:title><jats:p>{escape(w.abstract())}</jats:p>",
            "reference": [{"key": f"r{i}", "DOI": f"10.5555/ref.{i}"} for i in range(10)]}


def pubmed_article(n: int, w: Words) -> str:
    authors = "".join(f"<Author ValidYN=\"Y\"><LastName>{a.split()[-1]}</LastName><ForeName>{a.split()[0]}</ForeName>"
                      f"<Initials>{a[0]}</Initials></Author>" for a in w.names())
    sections = "".join(f'<AbstractText Label="{label}" NlmCategory="{label}">{escape(w.abstract()[:400])}'
                       "</AbstractText>" for label in ("BACKGROUND", "METHODS", "RESULTS", "CONCLUSIONS"))
    mesh = "".join(f'<MeshHeading><DescriptorName UI="D{i}" MajorTopicYN="N">{w.title()[:30]}</DescriptorName>'
                   "</MeshHeading>" for i in range(8))
    refs = "".join(f"<Reference><Citation>{w.title()}</Citation><ArticleIdList><ArticleId IdType=\"pubmed\">{i}"
                   "</ArticleId></ArticleIdList></Reference>" for i in range(10))
    return (f'<PubmedArticle><MedlineCitation Status="MEDLINE" Owner="NLM"><PMID Version="1">{n}</PMID>'
            f'<Article PubModel="Print"><Journal><ISSN IssnType="Print">1234-5678</ISSN><JournalIssue><PubDate>'
            f"<Year>{2000 + n % 25}</Year></PubDate></JournalIssue><Title>Journal of Tests</Title></Journal>"
            f"<ArticleTitle>{escape(w.title())}</ArticleTitle><Abstract>{sections}</Abstract>"
            f'<AuthorList CompleteYN="Y">{authors}</AuthorList><ELocationID EIdType="doi" ValidYN="Y">10.5555/pm.{n}'
            f"</ELocationID></Article><MeshHeadingList>{mesh}</MeshHeadingList></MedlineCitation><PubmedData>"
            f'<ArticleIdList><ArticleId IdType="pubmed">{n}</ArticleId></ArticleIdList><ReferenceList>{refs}'
            "</ReferenceList></PubmedData></PubmedArticle>\n")


def atom_entry(n: int, w: Words) -> str:
    authors = "".join(f"<author><name>{a}</name></author>" for a in w.names())
    return (f"<entry><id>http://arxiv.org/abs/2401.{n:05d}v2</id><updated>2024-01-02T00:00:00Z</updated>"
            f"<published>2024-01-01T00:00:00Z</published><title>{escape(w.title())}</title>"
            f"<summary>{escape(w.abstract())}</summary>{authors}<arxiv:doi>10.5555/ax.{n}</arxiv:doi>"
            f'<link href="https://arxiv.org/abs/2401.{n:05d}v2" rel="alternate" type="text/html"/>'
            '<arxiv:primary_category term="cs.LG"/><category term="cs.LG"/><category term="stat.ML"/></entry>\n')


def oai_record(n: int, w: Words) -> str:
    authors = "".join(f"<author><keyname>{a.split()[-1]}</keyname><forenames>{a.split()[0]}</forenames></author>"
                      for a in w.names())
    return (f"<record><header><identifier>oai:arXiv.org:2402.{n:05d}</identifier><datestamp>2024-02-01</datestamp>"
            f'<setSpec>cs</setSpec></header><metadata><arXiv xmlns="http://arxiv.org/OAI/arXiv/"><id>2402.{n:05d}</id>'
            f"<created>2024-02-01</created><authors>{authors}</authors><title>{escape(w.title())}</title>"
            f"<categories>cs.LG stat.ML</categories><abstract>{escape(w.abstract())}</abstract></arXiv></metadata>"
            "</record>\n")


# --- the set ------------------------------------------------------------------------------------------


def generate(root: Path, fmt: str, count: int, parts: int, w: Words) -> Path:
    """`count` records of `fmt` in `parts` files under root/fmt, as the source publishes them."""
    folder = root / fmt
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    per_part = -(-count // parts)
    for part in range(parts):
        numbers = range(part * per_part + 1, min(count, (part + 1) * per_part) + 1)
        if fmt == "openalex":
            target = folder / "works" / f"updated_date=2024-0{part % 9 + 1}-01" / f"part_{part:03d}.gz"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(gzip.compress("".join(json.dumps(openalex_work(n, w)) + "\n"
                                                     for n in numbers).encode(), 1))
        elif fmt == "s2":
            rows = [s2_rows(n, w) for n in numbers]
            for name, index in (("papers", 0), ("abstracts", 1)):
                (folder / name).mkdir(exist_ok=True)
                ordered = rows if index == 0 else list(reversed(rows))  # the datasets share no order
                (folder / name / f"{name}-part{part}.gz").write_bytes(gzip.compress(
                    "".join(json.dumps(r[index]) + "\n" for r in ordered).encode(), 1))
        elif fmt == "crossref":
            items = [crossref_item(n, w) for n in numbers]
            (folder / f"{part}.json.gz").write_bytes(gzip.compress(json.dumps({"items": items}).encode(), 1))
        elif fmt == "pubmed":
            body = _MEDLINE + "".join(pubmed_article(n, w) for n in numbers) + "</PubmedArticleSet>\n"
            (folder / f"pubmed25n{part + 1:04d}.xml.gz").write_bytes(gzip.compress(body.encode(), 1))
        elif fmt == "arxiv-atom":
            body = _ATOM.format(total=count) + "".join(atom_entry(n, w) for n in numbers) + "</feed>\n"
            (folder / f"query-{part}.atom").write_text(body)
        else:
            body = _OAI + "".join(oai_record(n, w) for n in numbers)
            body += f'<resumptionToken cursor="{part}">{part + 1}</resumptionToken></ListRecords></OAI-PMH>\n'
            (folder / f"listrecords-{part}.xml").write_text(body)
    return folder


def parse(folder: Path) -> tuple[int, float, float]:
    """(papers decoded, wall s, CPU s) of reading every part: detection, framing, mapping, decoding."""
    from indexer.ingest import Inputs, Parsed

    papers = 0
    with Timer() as t, Inputs([folder]) as inputs:
        for path in inputs.files:
            papers += sum(isinstance(item, Parsed) for item in inputs.read(path))
    return papers, t.wall, t.cpu


def encode_rate(folder: Path, sample: int) -> float:
    """Papers per CPU second of the bundled model on `sample` generated papers (model load excluded)."""
    from indexer.ingest import Inputs, Parsed
    from models.embedder import Embedder
    from models.paper import embed_text

    with Inputs([folder]) as inputs:
        items = (item for path in inputs.files for item in inputs.read(path) if isinstance(item, Parsed))
        texts = [embed_text(item.paper) for _, item in zip(range(sample), items, strict=False)]
    embedder = Embedder()
    embedder.encode(texts[:8], "document")  # warm up
    with Timer() as t:
        embedder.encode(texts, "document")
    return len(texts) / t.cpu, len(texts) / t.wall


# VmHWM, not ru_maxrss: Linux carries the parent's peak into ru_maxrss across exec (the parent here
# has the model loaded), while VmHWM is this process's own high-water mark. tracemalloc only on
# request: it slows the many small allocations of JSON decoding tenfold.
_CHILD = """
import sys, tracemalloc
from pathlib import Path
from benchmarks.measure import rss_bytes
from indexer.ingest import Parsed, read_items
before = rss_bytes()
if sys.argv[2] == "1":
    tracemalloc.start()
count = sum(isinstance(i, Parsed) for i in read_items(sys.argv[1]))
traced = tracemalloc.get_traced_memory()[1] if sys.argv[2] == "1" else -1
status = Path("/proc/self/status").read_text().splitlines()
peak = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM"))
print(count, before, peak, traced)
"""


def memory(root: Path, megabytes: int, w: Words, traced: bool, shapes: str = "openalex,pubmed") -> Table:
    table = Table(f"Memory streaming one large file (child process, {megabytes} MB and a quarter of it)",
                  ["file", "uncompressed MB", "records", "RSS after imports MB", "peak RSS MB",
                   "tracemalloc peak MB", "seconds"])
    files = {"openalex": (lambda n: json.dumps(openalex_work(n, w)) + "\n", "", "", "part_big.gz"),
             "pubmed": (lambda n: pubmed_article(n, w), _MEDLINE, "</PubmedArticleSet>\n", "pubmed-big.xml.gz")}
    for make, head, tail, name in (files[shape] for shape in shapes.split(",")):
        template = [make(n) for n in range(1, 201)]  # repeated with new ids: generation stays cheap
        for size in (megabytes // 4, megabytes):
            path = root / "memory" / f"{size}-{name}"
            path.parent.mkdir(parents=True, exist_ok=True)
            written = records = 0
            with gzip.open(path, "wt", compresslevel=1) as handle:
                handle.write(head)
                while written < size << 20:
                    text = template[records % len(template)]  # ids repeat: memory does not depend on them
                    handle.write(text)
                    written += len(text)
                    records += 1
                handle.write(tail)
            started = time.perf_counter()
            out = subprocess.run([sys.executable, "-c", _CHILD, str(path), str(int(traced))], capture_output=True,
                                 text=True, cwd=ROOT, check=True).stdout.split()
            count, before, peak, allocated = (int(x) for x in out)
            table.add(path.name, written / (1 << 20), count, before / (1 << 20), peak / (1 << 20),
                      allocated / (1 << 20) if traced else float("nan"), time.perf_counter() - started)
            path.unlink()
    table.notes.append("flat memory: the larger file's peaks equal the smaller one's; RSS is mostly the imports "
                       "(the project's models package), tracemalloc counts what reading allocates")
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sources", description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=100_000, help="records in the whole set (default 100000)")
    parser.add_argument("--parts", type=int, default=4, help="part files per format (default 4)")
    parser.add_argument("--encode-sample", type=int, default=256, help="papers embedded to measure the rate")
    parser.add_argument("--memory-mb", type=int, default=256, help="size of the large file (0: skip)")
    parser.add_argument("--tracemalloc", action="store_true", help="also trace Python allocations (much slower)")
    parser.add_argument("--memory-shapes", default="openalex,pubmed", help="large files to stream (comma-separated)")
    parser.add_argument("--memory-only", action="store_true", help="skip the parse/embed split")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/papersearch-bench-sources"))
    args = parser.parse_args(argv)
    words = Words()
    if not args.memory_only:
        split(args, words)
    if args.memory_mb:
        print(memory(args.workdir, args.memory_mb, words, args.tracemalloc, args.memory_shapes).render())
    shutil.rmtree(args.workdir, ignore_errors=True)
    return 0


def split(args, words: Words) -> None:
    """The parse+map / embed table over a generated multi-part set."""
    per_format = args.records // len(FORMATS)
    folders = {}
    with Timer() as generating:
        for fmt in FORMATS:
            folders[fmt] = generate(args.workdir, fmt, per_format, args.parts, words)
    rate_cpu, rate_wall = encode_rate(folders["openalex"], args.encode_sample)
    table = Table(f"Parse + map vs embedding, {per_format:,} records per format in {args.parts} parts "
                  f"({per_format * len(FORMATS):,} in all)",
                  ["format", "papers", "parse CPU s", "parse papers/s (CPU)", "embed CPU s (projected)",
                   "parse / embed %"])
    for fmt, folder in folders.items():
        papers, _, cpu = parse(folder)
        embed = papers / rate_cpu
        table.add(fmt, papers, cpu, papers / cpu, embed, 100 * cpu / embed)
    table.notes += [f"embedding: bundled all-MiniLM-L6-v2 on {args.encode_sample} generated papers: "
                    f"{rate_cpu:.1f} papers per CPU second ({rate_wall:.1f}/s wall); projected, not run, for 100k",
                    "CPU seconds, not wall, since the machine is shared; parse = format detection, framing, the "
                    "source mapping and the record decoder (indexer.ingest.Inputs), everything before embedding",
                    f"generating the set took {generating.wall:.0f}s; load average {load_average()}"]
    print(table.render())


if __name__ == "__main__":
    sys.exit(main())
