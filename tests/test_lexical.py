"""The lexical index: analysis, query syntax that just searches, staying in sync with every write,
recovering from crashes, and filters and paging in every search mode."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from indexer import lexical
from indexer.build import IndexReport, IndexWriter
from indexer.store import IndexStore, Upsert, WriteLock, lexical_path, lexical_state_file
from models.config import Settings
from models.paper import Paper, content_hash
from models.query import MODES, Filters
from search.engine import SearchEngine


def ids(hits):
    return [hit.paper.paper_id for hit in hits]


def lexical_doc_count(index_dir) -> int:
    index = lexical.open_index(lexical_path(index_dir))
    return index.searcher().num_docs


# --- analysis -------------------------------------------------------------------------------------


def test_analyzer_stems_folds_and_drops_stop_words():
    assert lexical.analyze("Folding of the proteins") == lexical.analyze("folded protein")
    assert lexical.analyze("Schrödinger") == lexical.analyze("schrodinger")
    assert lexical.analyze("the of and is") == []
    assert lexical.analyze("PP-OCRv3") == ["pp", "ocrv3"]


def test_term_of_single_words():
    assert lexical.term_of("Running") == lexical.term_of("runs") == "run"
    assert lexical.term_of("the") is None


# --- query syntax never raises --------------------------------------------------------------------

SYNTAX_QUERIES = [
    '"unbalanced quote OCR', "OCR AND", "AND", "OR NOT", "NEAR(ocr, text, 3)", "title:ocr", "ocr*", "-ocr",
    "+ocr -", "(((ocr", "ocr)))", "ocr^2", "ocr~1", "[1 TO 5]", "{ocr}", "\\", "'", "!", ":", "/", '""',
    "a AND (b OR", "* * *", "ocr\x00text", "lightweight -OCR \"text recognition\" AND NEAR/2",
]


@pytest.mark.parametrize("mode", MODES)
def test_query_syntax_characters_just_search(sample_engine, mode):
    for query in SYNTAX_QUERIES:
        hits = sample_engine.search(query, limit=5, mode=mode)
        assert isinstance(hits, list), query
    # The words inside the syntax still count.
    top = ids(sample_engine.search('"lightweight OCR" AND -(NEAR', limit=3, mode=mode))
    assert top and top[0] in {"seed-03", "seed-17"}


def test_queries_without_index_terms_find_nothing_lexically(sample_engine):
    assert sample_engine.search("* the - AND", mode="lexical") == []
    assert sample_engine.search("* the - AND", mode="hybrid")  # the dense side still answers


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet=st.sampled_from(list('"()*-+:^~[]{}!\\/\'?&|<>ocr xyz ANDORNTE')), min_size=1, max_size=40))
def test_arbitrary_syntax_never_raises_in_lexical_mode(sample_engine, query):
    if not query.strip():
        return  # empty queries are refused by design (InvalidQuery), tested elsewhere
    assert isinstance(sample_engine.search(query, limit=3, mode="lexical"), list)


# --- staying in sync ------------------------------------------------------------------------------


def write(index_dir, embedder, upserts=(), deletes=()):
    with IndexWriter(Settings(index_dir=index_dir), embedder=embedder) as writer:
        if upserts:
            writer.upsert(list(upserts), IndexReport())
        if deletes:
            writer.delete(list(deletes))


def test_update_insert_and_delete_keep_the_lexical_index_in_sync(fresh_index_dir, embedder):
    engine = SearchEngine.open(Settings(index_dir=fresh_index_dir), encoder=embedder)
    try:
        assert ids(engine.search("SDWPF", mode="lexical")) == ["seed-06"]
        old = engine.store.get_papers(["seed-06"])["seed-06"]
        changed = replace(old, title="Marsupial markets", abstract="Quokkanomics studies how quokkas trade.")
        added = Paper(paper_id="new-1", title="Wombat burrows", abstract="Wombats dig burrows with care.")
        write(fresh_index_dir, embedder, upserts=[changed, added])
        engine.refresh()
        assert engine.search("SDWPF", mode="lexical") == []  # the old text is gone
        assert ids(engine.search("quokkanomics", mode="lexical")) == ["seed-06"]
        assert ids(engine.search("wombat", mode="lexical")) == ["new-1"]
        assert "seed-06" in ids(engine.search("quokkanomics", mode="hybrid", limit=3))

        # A metadata-only change keeps the same text and rowid: still found, by the new year too.
        write(fresh_index_dir, embedder, upserts=[replace(changed, year=1999)])
        engine.refresh()
        hits = engine.search("quokkanomics", mode="lexical", filters=Filters(year_to=2000))
        assert ids(hits) == ["seed-06"] and hits[0].paper.year == 1999

        write(fresh_index_dir, embedder, deletes=["seed-06"])
        engine.refresh()
        assert engine.search("quokkanomics", mode="lexical") == []
        for mode in MODES:
            assert "seed-06" not in ids(engine.search("quokkanomics marsupial", mode=mode, limit=30))
        assert lexical_doc_count(fresh_index_dir) == engine.store.count() == 24
        state = json.loads(lexical_state_file(fresh_index_dir).read_text())
        assert state["generation"] == engine.store.generation
    finally:
        engine.close()


def test_an_open_reader_catches_up_with_a_writer_without_refresh(fresh_index_dir, embedder):
    engine = SearchEngine.open(Settings(index_dir=fresh_index_dir), encoder=embedder)
    try:
        assert engine.search("platypus", mode="lexical") == []
        write(fresh_index_dir, embedder, upserts=[Paper("new-2", "Platypus venom", "Platypus spurs deliver venom.")])
        # Another process wrote; nobody called engine.refresh(): the next lexical query catches up.
        assert ids(engine.search("platypus", mode="lexical")) == ["new-2"]
    finally:
        engine.close()


def test_a_write_rolled_back_midway_leaves_no_document_behind(fresh_index_dir, embedder):
    # The store queues each row's document in tantivy as it writes it: a write that fails after some
    # rows (here a vector of the wrong shape) must take its queued documents back with it, or the next
    # commit would publish them under rowids SQLite hands out again.
    failed = Paper(paper_id="new-quokka", title="Quokkafold", abstract="Quokkafold folds quokka proteins.")
    good = embedder.encode([failed.title], "document")[0]
    with IndexWriter(Settings(index_dir=fresh_index_dir), embedder=embedder) as writer:
        upserts = [Upsert(failed, content_hash(failed, embedder.fingerprint), good),
                   Upsert(Paper("new-bad", "Bad vector"), "hash", good[:10])]
        with pytest.raises(ValueError, match="shape"):
            writer.commit(upserts, IndexReport())
        writer.upsert([Paper("new-wombat", "Wombat burrows", "Wombats dig burrows.")], IndexReport())
    engine = SearchEngine.open(Settings(index_dir=fresh_index_dir), encoder=embedder)
    try:
        assert engine.search("quokkafold", mode="lexical") == []
        assert ids(engine.search("wombat", mode="lexical")) == ["new-wombat"]
        assert lexical_doc_count(fresh_index_dir) == engine.store.count() == 25
    finally:
        engine.close()


@pytest.mark.parametrize("streamed", [True, False], ids=["rows", "apply"])
def test_a_paper_written_twice_in_one_write_is_searchable_by_its_last_text(fresh_index_dir, embedder, streamed):
    first = Paper(paper_id="new-twice", title="Quokkafold", abstract="Quokkas fold.")
    last = replace(first, title="Wombatnet", abstract="Wombats net.")
    vectors = embedder.encode([first.title, last.title], "document")
    upserts = [Upsert(paper, content_hash(paper, embedder.fingerprint), vector)
               for paper, vector in zip((first, last), vectors, strict=True)]
    store = IndexStore.create(fresh_index_dir, embedder.info)
    writer = lexical.LexicalWriter(fresh_index_dir, store).open()
    try:
        result = store.write(upserts, rows=writer if streamed else None)
        if not streamed:
            writer.apply(result)
        writer.commit()
    finally:
        writer.close()
        store.close()
    assert lexical_top(fresh_index_dir, embedder, query="quokkafold") == []
    assert lexical_top(fresh_index_dir, embedder, query="wombatnet") == ["new-twice"]
    assert lexical_doc_count(fresh_index_dir) == 25


# --- recovery ---------------------------------------------------------------------------------------


def lexical_top(index_dir, embedder, query="OCR system text recognition"):
    engine = SearchEngine.open(Settings(index_dir=index_dir), encoder=embedder)
    try:
        return ids(engine.search(query, limit=5, mode="lexical"))
    finally:
        engine.close()


def folder_snapshot(index_dir) -> dict:
    folder = lexical_path(index_dir)
    return {p.name: p.read_bytes() for p in folder.iterdir()} if folder.exists() else {}


def test_missing_lexical_index_is_served_from_memory_without_writing(fresh_index_dir, embedder, caplog):
    expected = lexical_top(fresh_index_dir, embedder)
    shutil.rmtree(lexical_path(fresh_index_dir))  # an index made before lexical search existed
    with caplog.at_level("WARNING", logger="papersearch"):
        assert lexical_top(fresh_index_dir, embedder) == expected
    assert not lexical_path(fresh_index_dir).exists()  # readers never write
    assert "is missing" in caplog.text and "papersearch check --repair" in caplog.text


def test_check_reports_a_missing_lexical_index_and_repair_rebuilds_it(fresh_index_dir, embedder):
    from indexer.check import check_index, repair_index

    expected = lexical_top(fresh_index_dir, embedder)
    shutil.rmtree(lexical_path(fresh_index_dir))
    report = check_index(fresh_index_dir)
    assert [p.part for p in report.problems] == ["lexical"] and report.problems[0].repairable
    repaired = repair_index(fresh_index_dir)
    assert repaired.ok and any("lexical" in line for line in repaired.repaired), repaired.repaired
    assert lexical.is_current(fresh_index_dir, IndexStore.open(fresh_index_dir))
    assert lexical_doc_count(fresh_index_dir) == 24 and lexical_top(fresh_index_dir, embedder) == expected


def test_damaged_lexical_index_is_served_from_memory_without_writing(fresh_index_dir, embedder):
    expected = lexical_top(fresh_index_dir, embedder)
    (lexical_path(fresh_index_dir) / "meta.json").write_text("{ not json")
    lexical_state_file(fresh_index_dir).unlink()
    before = folder_snapshot(fresh_index_dir)
    assert lexical_top(fresh_index_dir, embedder) == expected
    assert folder_snapshot(fresh_index_dir) == before


def test_one_write_behind_is_served_from_disk_and_the_next_writer_repairs_it(fresh_index_dir, embedder):
    # A crash between SQLite's commit and tantivy's: the store moved on, the sidecar did not.
    store = IndexStore.create(fresh_index_dir, embedder.info)
    store.write([], ["seed-03"])
    store.close()
    assert not lexical.is_current(fresh_index_dir, IndexStore.open(fresh_index_dir))
    assert "seed-03" not in lexical_top(fresh_index_dir, embedder)  # a removed row is never shown
    assert lexical_doc_count(fresh_index_dir) == 24  # the reader wrote nothing
    write(fresh_index_dir, embedder)
    assert lexical_doc_count(fresh_index_dir) == 23


def test_further_behind_is_searched_in_memory_with_the_new_papers(fresh_index_dir, embedder):
    store = IndexStore.create(fresh_index_dir, embedder.info)
    for word in ("quokkafold", "wombatnet"):  # two writes the lexical index never saw
        paper = Paper(paper_id=f"new-{word}", title=f"{word} for protein structure")
        vector = embedder.encode([paper.title], "document")[0]
        store.write([Upsert(paper, content_hash(paper, embedder.fingerprint), vector)])
    store.close()
    before = folder_snapshot(fresh_index_dir)
    assert lexical_top(fresh_index_dir, embedder, query="wombatnet") == ["new-wombatnet"]
    assert folder_snapshot(fresh_index_dir) == before


def test_writer_session_repairs_a_stale_index(fresh_index_dir, embedder):
    lexical_state_file(fresh_index_dir).write_text(json.dumps({"analyzer": 0, "generation": -1, "papers": 0}))
    write(fresh_index_dir, embedder)  # opening a write session checks and rebuilds
    assert lexical.is_current(fresh_index_dir, IndexStore.open(fresh_index_dir))


def test_reader_falls_back_to_memory_while_a_writer_holds_the_lock(fresh_index_dir, embedder):
    expected = lexical_top(fresh_index_dir, embedder)
    shutil.rmtree(lexical_path(fresh_index_dir))
    with WriteLock(fresh_index_dir, wait=False):  # another process is writing: do not touch the folder
        assert lexical_top(fresh_index_dir, embedder) == expected
    assert not lexical_path(fresh_index_dir).exists()  # the reader left the folder to the writer


# --- filters and paging in every mode -------------------------------------------------------------

QUERY = "lightweight OCR document parsing"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("filters", [Filters(year_from=2025), Filters(author="Cheng Cui"),
                                     Filters(year_to=2021, author="wu")], ids=["year", "author", "both"])
def test_filters_hold_in_every_mode(sample_engine, mode, filters):
    store = sample_engine.store
    passing_rowids = set(store.filter_rowids(filters).tolist())
    passing = {paper.paper_id for rowid, paper in store.iter_papers() if rowid in passing_rowids}
    assert 0 < len(passing) < store.count()
    hits = sample_engine.search(QUERY, limit=24, filters=filters, mode=mode)
    assert set(ids(hits)) <= passing
    if mode != "lexical":  # lexically, a passing paper may share no word with the query
        assert hits
    if mode == "dense":
        assert set(ids(hits)) == passing  # every paper has a cosine: all of them rank


@pytest.mark.parametrize("filters", [Filters(year_from=2025), Filters(author="Cheng Cui")])
def test_lexical_filter_equals_the_filtered_full_ranking(sample_engine, filters):
    full = sample_engine.search(QUERY, limit=24, mode="lexical")
    passing = {rowid for rowid in sample_engine.store.filter_rowids(filters).tolist()}
    rowids = sample_engine.store.rowids_for(ids(full))
    oracle = [h.paper.paper_id for h in full if rowids[h.paper.paper_id] in passing]
    assert ids(sample_engine.search(QUERY, limit=3, filters=filters, mode="lexical")) == oracle[:3]


@pytest.mark.parametrize("mode", MODES)
def test_pages_join_up_in_every_mode(sample_engine, mode):
    whole = ids(sample_engine.search(QUERY, limit=9, mode=mode))
    pages = [ids(sample_engine.search(QUERY, limit=3, offset=offset, mode=mode)) for offset in (0, 3, 6)]
    assert len(whole) == 9
    assert sum(pages, []) == whole
    ranks = [h.rank for h in sample_engine.search(QUERY, limit=3, offset=3, mode=mode)]
    assert ranks == [4, 5, 6]


def test_hybrid_is_the_default_and_scores_are_ordered(sample_engine):
    hits = sample_engine.search(QUERY, limit=10)
    assert ids(hits) == ids(sample_engine.search(QUERY, limit=10, mode="hybrid"))
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)


def test_unknown_mode_is_refused(sample_engine):
    from models.errors import InvalidQuery

    with pytest.raises(InvalidQuery, match="dense, lexical, hybrid"):
        sample_engine.search("ocr", mode="bm25")
