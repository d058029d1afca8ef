"""Snippets: the best sentences, matched words in <mark>, and nothing else treated as markup."""

from __future__ import annotations

import re

from search.highlight import MAX_CHARS, snippet, split_sentences
from search.lexical import query_terms

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
