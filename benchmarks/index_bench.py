"""Local index: build time and query latency (p50/p99) on the HotpotQA sample corpus, each
engine side by side (SQLite FTS5, and Tantivy where it is installed).

    python -m benchmarks.index_bench [--corpus PATH] [--queries 1000] [--engines fts5,tantivy]
                                     [--out benchmarks/index_bench.json]

Title queries are page titles drawn with a seed; free-text queries are HotpotQA dev questions
(which rarely match a title, so they exercise BM25). Latency is one ``LocalWikipedia.lookup``
call, the tool's whole retrieval (an exact title, else BM25). Each engine's top-1 page is
compared with the first engine's on the same queries, and for the questions with their
supporting pages (how often the page found is one the answer needs).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

from araft_lc.wiki.corpus import Pages
from araft_lc.wiki.index import PageIndex
from araft_lc.wiki.index_engines import build, index_name, open_index
from araft_lc.wiki.tantivy_index import tantivy_available
from araft_lc.wiki.wikipedia import LocalWikipedia
from benchmarks.common import DATA, emit, stamp


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def run_queries(index: PageIndex, queries: list[str]) -> tuple[dict[str, float], list[Optional[str]]]:
    """Latency of the Wikipedia tool's retrieval (``LocalWikipedia.lookup``) per query, and the
    page each one found."""
    backend = LocalWikipedia(index)
    times, found = [], []
    for q in queries:
        start = time.perf_counter()
        result = backend.lookup(q)
        times.append((time.perf_counter() - start) * 1000)
        found.append(result.title)
    return {
        "n": len(times),
        "p50_ms": round(percentile(times, 50), 3),
        "p99_ms": round(percentile(times, 99), 3),
        "mean_ms": round(statistics.fmean(times), 3),
    }, found


def time_queries(index: PageIndex, queries: list[str]) -> dict[str, float]:
    return run_queries(index, queries)[0]


def same_share(a: list[Optional[str]], b: list[Optional[str]]) -> float:
    """The share of queries on which two engines found the same page (or both none)."""
    return round(sum(x == y for x, y in zip(a, b, strict=False)) / max(1, len(a)), 4)


def size_mb(path: Path) -> float:
    """An index's size on disk: a file's, or all of a folder's files."""
    files = path.rglob("*") if path.is_dir() else [path]
    return round(sum(f.stat().st_size for f in files if f.is_file()) / 1e6, 1)


def default_engines() -> str:
    return "fts5,tantivy" if tantivy_available() else "fts5"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default=str(DATA / "wiki_corpus.jsonl.gz"))
    parser.add_argument("--questions", default=str(DATA / "dev_distractor_a500.jsonl"))
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--engines", default=default_engines(), help="comma-separated; the first is the reference")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args(argv)
    if not Path(args.corpus).is_file():
        print(f"corpus {args.corpus} not found (set ARAFT_DATA_DIR)", file=sys.stderr)
        return 2
    rng = random.Random(args.seed)
    titles = [p.title for p in Pages([args.corpus])]
    title_queries = rng.sample(titles, min(args.queries, len(titles)))
    with open(args.questions, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    free_queries = [rows[i % len(rows)]["question"] for i in range(args.queries)]
    gold = [set(rows[i % len(rows)]["supporting_facts"]["title"]) for i in range(args.queries)]
    results: dict = {
        **stamp("python -m benchmarks.index_bench " + " ".join(argv if argv is not None else sys.argv[1:])),
        "engines": {},
        "same_top1_as_first": {},
    }
    found: dict[str, tuple[list, list]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for engine in args.engines.split(","):
            out = Path(tmp) / index_name("bench", engine)
            start = time.perf_counter()
            meta = build([args.corpus], out, engine=engine)
            build_s = time.perf_counter() - start
            index = open_index(out)
            time_queries(index, title_queries[:50])  # warm the page cache
            title_stats, title_found = run_queries(index, title_queries)
            free_stats, free_found = run_queries(index, free_queries)
            results["pages"] = int(meta["pages"])
            results["engines"][engine] = {
                "build_s": round(build_s, 2),
                "size_mb": size_mb(out),
                "title_queries": title_stats,
                "free_text_queries": free_stats,
                "free_text_top1_is_supporting": round(
                    sum(t in g for t, g in zip(free_found, gold, strict=False)) / len(gold), 4
                ),
            }
            found[engine] = (title_found, free_found)
            index.close()
    first = args.engines.split(",")[0]
    for engine in found:
        if engine != first:
            results["same_top1_as_first"][engine] = {
                "title_queries": same_share(found[first][0], found[engine][0]),
                "free_text_queries": same_share(found[first][1], found[engine][1]),
            }
    return emit(results, args.out)


if __name__ == "__main__":
    sys.exit(main())
