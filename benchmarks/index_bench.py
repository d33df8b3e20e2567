"""Local index: build time and query latency (p50/p99) on the HotpotQA sample corpus.

    python -m benchmarks.index_bench [--corpus PATH] [--queries 1000] [--out benchmarks/index_bench.json]

Title queries are page titles drawn with a seed; free-text queries are HotpotQA dev questions
(which rarely match a title, so they exercise BM25). Latency is one ``LocalWikipedia.lookup``
call, the tool's whole retrieval (an exact title, else BM25).
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

from benchmarks.common import DATA, emit, stamp
from araft_lc.index import WikiIndex, build_index
from araft_lc.tools.wikipedia import LocalWikipedia



def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def time_queries(index: WikiIndex, queries: list[str]) -> dict[str, float]:
    """Latency of the Wikipedia tool's retrieval (``LocalWikipedia.lookup``) per query."""
    backend = LocalWikipedia(index)
    times = []
    for q in queries:
        start = time.perf_counter()
        backend.lookup(q)
        times.append((time.perf_counter() - start) * 1000)
    return {"n": len(times), "p50_ms": round(percentile(times, 50), 3),
            "p99_ms": round(percentile(times, 99), 3), "mean_ms": round(statistics.fmean(times), 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default=str(DATA / "wiki_corpus.jsonl.gz"))
    parser.add_argument("--questions", default=str(DATA / "dev_distractor_a500.jsonl"))
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args(argv)
    if not Path(args.corpus).is_file():
        print(f"corpus {args.corpus} not found (set ARAFT_DATA_DIR)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.sqlite"
        start = time.perf_counter()
        meta = build_index([args.corpus], out)
        build_s = time.perf_counter() - start
        index = WikiIndex(out)
        rng = random.Random(args.seed)
        titles = [t for (t,) in index._con.execute("SELECT title FROM pages")]
        title_queries = rng.sample(titles, min(args.queries, len(titles)))
        questions = []
        with open(args.questions, encoding="utf-8") as f:
            for line in f:
                questions.append(json.loads(line)["question"])
        free_queries = [questions[i % len(questions)] for i in range(args.queries)]
        time_queries(index, title_queries[:50])  # warm the page cache
        results = {
            **stamp("python -m benchmarks.index_bench " + " ".join(argv if argv is not None else sys.argv[1:])),
            "pages": int(meta["pages"]),
            "build_s": round(build_s, 2),
            "size_mb": round(out.stat().st_size / 1e6, 1),
            "title_queries": time_queries(index, title_queries),
            "free_text_queries": time_queries(index, free_queries),
        }
        index.close()
    return emit(results, args.out)


if __name__ == "__main__":
    sys.exit(main())
