"""The local index at Wikipedia scale: build time, size, memory peak and query latency on
synthetic corpora of growing size.

    python -m benchmarks.index_scale_bench [--sizes 10000,100000,1000000] [--queries 1000]
                                           [--out benchmarks/index_scale_bench.json]

Each corpus is generated with a seed: titles of 1-4 words and intros of 2-8 sentences (about
the lengths of the HotpotQA abstracts), every word drawn from a Zipf-distributed vocabulary of
200,000 made-up words, so common words are very common as in English. Each size is built in a
child process (its peak RSS is the build's memory peak). Title queries are titles of the corpus;
free-text queries are 6-14 words drawn from the same distribution (question-like, rarely a
title, so BM25 runs). The last size's figures and the slope of latency against corpus size on
a log-log scale predict the HotpotQA abstracts dump (5.2M pages).
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
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import emit, stamp
from benchmarks.index_bench import time_queries

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


def _build(source: str, out: str, queue: "multiprocessing.Queue") -> None:
    from araft_lc.index import build_index

    start = time.perf_counter()
    build_index([source], out)
    queue.put({"build_s": round(time.perf_counter() - start, 2),
               "build_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)})


def measure(pages: int, queries: int, seed: int, tmp: Path) -> dict:
    from araft_lc.index import WikiIndex

    source, out = tmp / f"corpus-{pages}.jsonl", tmp / f"index-{pages}.sqlite"
    titles = write_corpus(source, pages, seed)
    queue: multiprocessing.Queue = multiprocessing.Queue()
    child = multiprocessing.Process(target=_build, args=(str(source), str(out), queue))
    child.start()
    built = queue.get()
    child.join()
    source.unlink()
    rng = random.Random(seed + 2)
    words = Words(seed + 3)
    title_queries = [titles[rng.randrange(pages)] for _ in range(queries)]
    free_queries = [" ".join(words.draw(rng.randint(6, 14))) + "?" for _ in range(queries)]
    index = WikiIndex(out)
    time_queries(index, title_queries[:50])  # warm the page cache
    row = {"pages": len(index), **built, "size_mb": round(out.stat().st_size / 1e6, 1),
           "title_queries": time_queries(index, title_queries),
           "free_text_queries": time_queries(index, free_queries)}
    index.close()
    out.unlink()
    return row


def predict(rows: list[dict], key: str, stat: str) -> dict:
    """The log-log slope of ``key``'s ``stat`` between the last two sizes, and its value at TARGET."""
    a, b = rows[-2], rows[-1]
    ya, yb = a[key][stat], b[key][stat]
    slope = math.log(yb / ya) / math.log(b["pages"] / a["pages"]) if ya > 0 and yb > 0 else 0.0
    return {"slope": round(slope, 3), f"{stat}_at_{TARGET}": round(yb * (TARGET / b["pages"]) ** slope, 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="corpus sizes, comma-separated")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tmp", help="where to build (default: the system temp folder; 1M pages need ~2 GB)")
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        for pages in sizes:
            rows.append(measure(pages, args.queries, args.seed, Path(tmp)))
            r = rows[-1]
            print(f"{pages:>9,} pages: built in {r['build_s']} s, {r['size_mb']} MB, peak {r['build_peak_rss_mb']} MB; "
                  f"title p99 {r['title_queries']['p99_ms']} ms, free-text p99 {r['free_text_queries']['p99_ms']} ms",
                  file=sys.stderr, flush=True)
    result = {**stamp("python -m benchmarks.index_scale_bench " + " ".join(argv if argv is not None else sys.argv[1:])),
              "sizes": rows}
    if len(rows) >= 2:
        result["prediction"] = {key: predict(rows, key, stat) for key in ("title_queries", "free_text_queries")
                                for stat in ("p99_ms",)}
        result["prediction"]["build_s"] = round(rows[-1]["build_s"] * TARGET / rows[-1]["pages"], 0)
        result["prediction"]["size_mb"] = round(rows[-1]["size_mb"] * TARGET / rows[-1]["pages"], 0)
    return emit(result, args.out)


if __name__ == "__main__":
    sys.exit(main())
