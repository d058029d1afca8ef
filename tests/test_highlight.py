"""Snippets: the best sentences, matched words in <mark>, and nothing else treated as markup."""

from __future__ import annotations

import json
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from indexer.ingest import read_papers
from indexer.lexical import term_of
from search.highlight import MAX_CHARS, _matches, snippet, split_sentences
from search.lexical import query_terms
from tests.conftest import SAMPLE, SHARED_DATA

ABSTRACT = ("We study <script>alert(1)</script> & other things. Proteins folded quickly in our runs, "
            "e.g. with AlphaFold2. Results improve by 5%. The folding of proteins is hard.")


def marked(html_text: str) -> list[str]:
    return re.findall(r"<mark>(.*?)</mark>", html_text)


def test_sentences_split_on_ends_but_not_on_abbreviations():
    spans = split_sentences(ABSTRACT)
    assert [ABSTRACT[a:b] for a, b in spans] == [
        "We study <script>alert(1)</script> & other things.",
        "Proteins folded quickly in our runs, e.g. with AlphaFold2.",
        "Results improve by 5%.",
        "The folding of proteins is hard.",
    ]


def test_matching_sentences_with_stemmed_words_marked():
    text = snippet(ABSTRACT, query_terms("protein folding"))
    assert text == ("… <mark>Proteins</mark> <mark>folded</mark> quickly in our runs, e.g. with AlphaFold2. … "
                    "The <mark>folding</mark> of <mark>proteins</mark> is hard.")


def test_text_is_escaped_and_only_marks_are_markup():
    text = snippet(ABSTRACT, query_terms("script alert things"))
    assert text.startswith("We study &lt;<mark>script</mark>&gt;<mark>alert</mark>(1)"
                           "&lt;/<mark>script</mark>&gt; &amp;")
    assert "<" not in text.replace("<mark>", "").replace("</mark>", "")


def test_adjacent_sentences_join_without_an_ellipsis():
    text = snippet(ABSTRACT, query_terms("study proteins"))
    assert text.startswith("We <mark>study</mark> &lt;script&gt;")
    assert "things. <mark>Proteins</mark>" in text


def test_rare_terms_choose_the_sentence():
    abstract = "Models are common here. Rare quokka facts appear here."
    weights = {"model": 0.1, "quokka": 5.0}
    text = snippet(abstract, ["model", "quokka"], weights, max_chars=30)
    assert marked(text) == ["quokka"]


def test_no_match_shows_the_opening_and_empty_abstract_gives_none():
    opening = "We study &lt;script&gt;alert(1)&lt;/script&gt; &amp; other things."
    assert snippet(ABSTRACT, query_terms("wombat")) == opening
    assert snippet("", ["x"]) is None
    assert snippet("   ", ["x"]) is None


def test_long_sentences_are_clipped_around_the_match():
    abstract = "word " * 150 + "target here " + "word " * 150
    text = snippet(abstract, query_terms("target"))
    plain = text.replace("<mark>", "").replace("</mark>", "")
    assert len(plain) <= MAX_CHARS + 4  # the text budget plus the two ellipses
    assert marked(text) == ["target"]
    assert plain.startswith("… word") and plain.endswith(" …")


def test_search_hits_carry_snippets_unless_asked_not_to(sample_engine):
    hits = sample_engine.search("protein structure prediction", limit=3)
    assert hits[0].paper.paper_id == "seed-01"
    assert "<mark>protein</mark>" in hits[0].snippet.lower()
    assert all(h.snippet for h in hits)
    assert hits[0].to_dict()["snippet"] == hits[0].snippet
    assert all(h.snippet is None for h in sample_engine.search("protein", limit=3, snippets=False))


def _every_matching_word(text: str, terms: set[str]) -> list[tuple[int, int, str]]:
    """The definition _matches speeds up: look up every word's index term."""
    found = []
    for word in re.finditer(r"[^\W_]+", text):
        term = term_of(word.group())
        if term is not None and term in terms:
            found.append((word.start(), word.end(), term))
    return found


# Stems that are not prefixes of their words (possibility -> possibl, dying -> die, happy -> happi),
# accents the index folds away, and a lower-casing that changes the text's length (İ).
HARD_WORDS = ["possibilities", "Probability", "dying", "lying", "Vying", "tying", "happy", "skies", "naïve", "Émission",
              "émissions", "İstanbul", "protein_folding", "x2folding", "DNA", "dna-binding", "the", "a"]


def test_fast_word_matching_finds_exactly_what_looking_up_every_word_finds():
    abstracts = [item.paper.abstract for item in read_papers(SAMPLE) if hasattr(item, "paper")]
    queries = ["protein folding", "lightweight OCR", "probability of dying", "naive emission", "DNA binding",
               "the possibility of happiness", "Istanbul skies", "a"]
    scifact = SHARED_DATA / "scifact"
    if scifact.is_dir():  # real abstracts widen the check where ../shared is present
        abstracts += [json.loads(line)["text"] for line in _first_lines(scifact / "corpus.jsonl.gz", 600)]
        queries += [json.loads(line)["text"] for line in _first_lines(scifact / "queries.jsonl.gz", 60)]
    abstracts.append(" ".join(HARD_WORDS) + ". " + " ".join(w.upper() for w in HARD_WORDS))
    for query in queries:
        terms = set(query_terms(query))
        for text in abstracts:
            assert _matches(text, terms) == _every_matching_word(text, terms), (query, text[:80])


@given(st.lists(st.sampled_from(HARD_WORDS + ["folded", "Proteins", "OCR", "é", "1", "-", "  ", ", "]),
                max_size=30), st.lists(st.sampled_from(HARD_WORDS + ["fold", "ocr"]), min_size=1, max_size=4))
@settings(max_examples=300, deadline=None)
def test_fast_word_matching_on_generated_text(words, query):
    text = " ".join(words)
    terms = set(query_terms(" ".join(query)))
    assert _matches(text, terms) == _every_matching_word(text, terms)


def _first_lines(path, count):
    import gzip
    import itertools

    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return list(itertools.islice(handle, count))
