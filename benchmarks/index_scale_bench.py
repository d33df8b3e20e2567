"""The local index at Wikipedia scale: build time, size, memory peak and query latency on
synthetic corpora of growing size, each engine side by side on the same corpus and queries.

    python -m benchmarks.index_scale_bench [--sizes 10000,100000,1000000] [--queries 1000]
                                           [--engines fts5,tantivy] [--out benchmarks/index_scale_bench.json]

Each corpus is generated with a seed: titles of 1-4 words and intros of 2-8 sentences (about
the lengths of the HotpotQA abstracts), every word drawn from a Zipf-distributed vocabulary of
200,000 made-up words, so common words are very common as in English. Each size is built in a
child process (its peak RSS is the build's memory peak). Title queries are titles of the corpus;
free-text queries are 6-14 words drawn from the same distribution (question-like, rarely a
title, so BM25 runs). Each engine's top-1 page is compared with the first engine's: as the tool
looks up (titles are exact matches), and by BM25 alone (``search``) on both kinds of query. The
last size's figures and the slope of latency against corpus size on a log-log scale predict the
HotpotQA abstracts dump (5.2M pages).
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import json
import math
import multiprocessing
import random
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import emit, stamp
from benchmarks.index_bench import default_engines, run_queries, same_share, size_mb, time_queries

VOCABULARY = 200_000
TARGET = 5_200_000  # pages in the HotpotQA abstracts dump


class Words:
    """Made-up words with Zipf(1.0) frequencies."""

    def __init__(self, seed: int):
        rng = random.Random(seed)
        letters = "abcdefghijklmnopqrstuvwxyz"
        self.words = ["".join(rng.choice(letters) for _ in range(rng.randint(2, 10))) for _ in range(VOCABULARY)]
        self.cumulative = list(itertools.accumulate(1.0 / (rank + 1) for rank in range(VOCABULARY)))
        self.rng = rng

    def draw(self, n: int) -> list[str]:
        top = self.cumulative[-1]
        return [self.words[bisect.bisect_left(self.cumulative, self.rng.random() * top)] for _ in range(n)]


def write_corpus(path: Path, pages: int, seed: int) -> list[str]:
    """Write ``pages`` paragraphs as corpus JSON lines; their titles."""
    words = Words(seed)
    rng = random.Random(seed + 1)
    titles = []
    with path.open("w", encoding="utf-8") as f:
        for i in range(pages):
            title = " ".join(w.capitalize() for w in words.draw(rng.randint(1, 4))) + f" {i}"
            sentences = [" ".join(words.draw(rng.randint(8, 22))).capitalize() + "." for _ in range(rng.randint(2, 8))]
            f.write(json.dumps({"title": title, "sentences": sentences}) + "\n")
            titles.append(title)
    return titles


def _build(engine: str, source: str, out: str, queue: multiprocessing.Queue) -> None:
    from araft_lc.wiki.index_engines import build

    start = time.perf_counter()
    build([source], out, engine=engine)
    queue.put(
        {
            "build_s": round(time.perf_counter() - start, 2),
            "build_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        }
    )


def _bm25_top1(index, queries: list[str]) -> list:
    return [hits[0].title if (hits := index.search(q, k=1)) else None for q in queries]


def measure_engine(
    engine: str, source: Path, out: Path, title_queries: list[str], free_queries: list[str]
) -> tuple[dict, dict]:
    """One engine's figures on one corpus, and the pages its queries found."""
    from araft_lc.wiki.index_engines import open_index

    queue: multiprocessing.Queue = multiprocessing.Queue()
    child = multiprocessing.Process(target=_build, args=(engine, str(source), str(out), queue))
    child.start()
    built = queue.get()
    child.join()
    index = open_index(out)
    time_queries(index, title_queries[:50])  # warm the page cache
    title_stats, title_found = run_queries(index, title_queries)
    free_stats, free_found = run_queries(index, free_queries)
    row = {**built, "size_mb": size_mb(out), "title_queries": title_stats, "free_text_queries": free_stats}
    found = {"title_lookup": title_found, "title_bm25": _bm25_top1(index, title_queries), "free_text": free_found}
    index.close()
    shutil.rmtree(out) if out.is_dir() else out.unlink()
    return row, found


def measure(pages: int, queries: int, seed: int, tmp: Path, engines: list[str]) -> dict:
    from araft_lc.wiki.index_engines import index_name

    source = tmp / f"corpus-{pages}.jsonl"
    titles = write_corpus(source, pages, seed)
    rng = random.Random(seed + 2)
    words = Words(seed + 3)
    title_queries = [titles[rng.randrange(pages)] for _ in range(queries)]
    free_queries = [" ".join(words.draw(rng.randint(6, 14))) + "?" for _ in range(queries)]
    row: dict = {"pages": pages}
    found = {}
    for engine in engines:
        row[engine], found[engine] = measure_engine(
            engine, source, tmp / index_name(f"index-{pages}", engine), title_queries, free_queries
        )
        print(
            f"{pages:>9,} pages, {engine}: built in {row[engine]['build_s']} s, {row[engine]['size_mb']} MB, "
            f"peak {row[engine]['build_peak_rss_mb']} MB; title p99 {row[engine]['title_queries']['p99_ms']} ms, "
            f"free-text p99 {row[engine]['free_text_queries']['p99_ms']} ms",
            file=sys.stderr,
            flush=True,
        )
    source.unlink()
    row["same_top1_as_first"] = {
        engine: {kind: same_share(found[engines[0]][kind], found[engine][kind]) for kind in found[engine]}
        for engine in engines[1:]
    }
    return row


def predict(rows: list[dict], engine: str, key: str, stat: str) -> dict:
    """The log-log slope of ``engine``'s ``key``'s ``stat`` between the last two sizes, and its value at TARGET."""
    a, b = rows[-2], rows[-1]
    ya, yb = a[engine][key][stat], b[engine][key][stat]
    slope = math.log(yb / ya) / math.log(b["pages"] / a["pages"]) if ya > 0 and yb > 0 else 0.0
    return {"slope": round(slope, 3), f"{stat}_at_{TARGET}": round(yb * (TARGET / b["pages"]) ** slope, 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="corpus sizes, comma-separated")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--engines", default=default_engines(), help="comma-separated; the first is the reference")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tmp", help="where to build (default: the system temp folder; 1M pages need ~2 GB)")
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    engines = args.engines.split(",")
    rows = []
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        for pages in sizes:
            rows.append(measure(pages, args.queries, args.seed, Path(tmp), engines))
    result = {
        **stamp("python -m benchmarks.index_scale_bench " + " ".join(argv if argv is not None else sys.argv[1:])),
        "engines": engines,
        "sizes": rows,
    }
    if len(rows) >= 2:
        result["prediction"] = {}
        for engine in engines:
            last = rows[-1][engine]
            result["prediction"][engine] = {
                **{key: predict(rows, engine, key, "p99_ms") for key in ("title_queries", "free_text_queries")},
                "build_s": round(last["build_s"] * TARGET / rows[-1]["pages"], 0),
                "size_mb": round(last["size_mb"] * TARGET / rows[-1]["pages"], 0),
            }
    return emit(result, args.out)


if __name__ == "__main__":
    sys.exit(main())
