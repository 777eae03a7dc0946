"""How long the review page takes to find the next line to check, as a store fills up.

    .venv/bin/python benchmarks/review_queue.py [--jobs 200 1000 5000] [--lines 30] [--revised-every 10] [--repeat 5]

For each size, a fresh store gets that many read, unapproved jobs of one profile
(`--lines` lines each, random confidences; every `--revised-every`th job with a
reviewer's revision on top, not yet approved: those are all read, 0 for none), then the queue is computed `--repeat` times as the job page
asks for it (the next line only) and as /check does (the first 20 and the count of
all). Prints a Markdown table: jobs, lines to check, median milliseconds of each.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

from hwdaemon.model import Box, Line, PageResult, Result
from hwdaemon.review import apply_edits
from hwdaemon.review_queue import check_queue
from hwdaemon.store import Store


def filled_store(folder: Path, jobs: int, lines: int, revised_every: int, rng: random.Random) -> Store:
    """A store with `jobs` read jobs of profile `default`; every `revised_every`th has one corrected line as revision 1."""
    store = Store(folder / "state")
    for number in range(jobs):
        page_lines = tuple(
            Line(
                f"line {index} of job {number} with some words", rng.random(), Box(10, 10 + 40 * index, 900, 35).polygon
            )
            for index in range(lines)
        )
        result = Result(
            f"{number}.png", f"{number:064x}", "default", (PageResult(1, 1000, 40 * lines + 20, page_lines),)
        )
        job = store.jobs.add(f"/inbox/{number}.png", "/inbox", "default", result.sha256, 1, 1)
        store.jobs.finish(job.id, result, [])
        if revised_every and number % revised_every == 0:
            store.review.add_revision(job.id, apply_edits(result, 1, {0: "corrected"}, 1), "bench")
    return store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, nargs="+", default=[200, 1000, 5000])
    parser.add_argument("--lines", type=int, default=30)
    parser.add_argument("--revised-every", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print("| jobs | lines to check | next line (job page), ms | first 20 and count (/check), ms |")
    print("|---:|---:|---:|---:|")
    for jobs in args.jobs:
        with tempfile.TemporaryDirectory() as folder:
            root = Path(folder)
            store = filled_store(root, jobs, args.lines, args.revised_every, random.Random(jobs))
            next_times, page_times, total = [], [], None
            for _ in range(args.repeat):
                started = time.perf_counter()
                check_queue(store, "default", limit=1, is_counted=False)
                next_times.append((time.perf_counter() - started) * 1000)
                started = time.perf_counter()
                total = check_queue(store, "default").total
                page_times.append((time.perf_counter() - started) * 1000)
            store.close()
        print(f"| {jobs} | {total} | {statistics.median(next_times):.1f} | {statistics.median(page_times):.0f} |")


if __name__ == "__main__":
    main()
