"""What `papersearch` prints: ranked hits, index reports and check reports, for people or as JSON lines."""

from __future__ import annotations

import html
import json
import sys


def print_hits(hits, as_json: bool, fmt: str | None = None) -> None:
    """Ranked hits in an export format (api/result_formats.py), as JSON lines with `as_json`, else
    a short listing for people."""
    if fmt is not None:
        from api.cli_errors import UsageError
        from api.result_formats import export

        if as_json and fmt != "jsonl":
            raise UsageError(f"--json prints JSON lines; it cannot be combined with --format {fmt}.")

        sys.stdout.write(export(fmt, hits))
        return
    if as_json:
        for hit in hits:
            print(json.dumps(hit.to_dict(), ensure_ascii=False))
        return
    if not hits:
        print("No results.")
    for hit in hits:
        paper = hit.paper
        authors = ", ".join(paper.authors[:3]) + (" et al." if len(paper.authors) > 3 else "")
        facts = " · ".join(x for x in (str(paper.year or ""), " ".join(paper.categories), authors) if x)
        print(f"{hit.rank:>3}. [{hit.score:.3f}] {paper.title}")
        print(f"     {paper.paper_id}" + (f" · {facts}" if facts else ""))
        if hit.snippet:
            print(f"     {terminal_snippet(hit.snippet)}")


def terminal_snippet(snippet_html: str) -> str:
    """A hit's HTML snippet for a terminal: marks in bold on a tty, plain text otherwise."""
    bold, plain = ("\033[1m", "\033[0m") if sys.stdout.isatty() else ("", "")
    return html.unescape(snippet_html.replace("<mark>", bold).replace("</mark>", plain))


def report_counts(report) -> dict:
    """One `index` run's counts, as its --json line shows them."""
    return {"indexed": report.indexed, "unchanged": report.unchanged, "rejected": len(report.rejected),
            "embedded": report.embedded, "duplicates": len(report.duplicates), "seconds": round(report.seconds, 3),
            "deleted": report.deleted, "skipped": sum(report.skipped.values())}


def print_check(report, as_json: bool) -> int:
    """A check (or repair) report; returns the exit status: 0 when the index is sound, else 1."""
    if as_json:
        print(json.dumps(report.to_dict(), ensure_ascii=False))
        return 0 if report.ok else 1
    for line in report.repaired:
        print(f"repaired: {line}")
    if report.papers is not None:
        print(f"{report.directory}: {report.papers} papers, generation {report.generation}, model {report.model}")
    for problem in report.problems:
        fix = "repairable" if problem.repairable else "not repairable here"
        print(f"problem [{problem.part}] {problem.message} ({fix})")
    if report.ok:
        print("OK: records, embeddings, model, vectors, lexical index, ONNX export and manifest agree.")
        return 0
    fixable = sum(p.repairable for p in report.problems)
    hint = f" 'papersearch check --repair --index {report.directory}' can fix {fixable}." if fixable else ""
    print(f"{len(report.problems)} problem(s).{hint}", file=sys.stderr)
    return 1


def print_eval(reports, task: str, as_json: bool) -> None:
    """`papersearch eval`: one JSON object per mode, or a table."""
    if as_json:
        for report in reports:
            print(json.dumps(report.to_dict()))
        return
    first = reports[0]
    shown = "" if task == "search" else f", task {task}"
    print(f"{first.dataset} / {first.split}: {first.queries} judged queries, model {first.model}{shown}")
    print(f"{'mode':<8} {'nDCG@10':>8} {'R@100':>8} {'MRR@10':>8} {'ms/query':>9}")
    for report in reports:
        print(f"{report.mode:<8} {report.ndcg_at_10:>8.4f} {report.recall_at_100:>8.4f} "
              f"{report.mrr_at_10:>8.4f} {report.mean_latency_ms:>9.1f}")
    print(f"index: {first.index_dir}")
