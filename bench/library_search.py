"""Library listing and search over 10,000 adapters, side by side with the naive way, in one run.

Goal: `library ls` and `library search` answer in <= 50 ms with 10,000 adapters. `ls` shows the newest
page plus the total (as the CLI does by default); `ls --all` over every row is printed for information.
Each loratui query is timed next to the obvious alternative it replaces: LIKE over every text column with
SELECT * (metadata blob included) for search, SELECT * filtered in Python for listing. Medians of
--repeats runs, alternating.

    .venv/bin/python bench/library_search.py [--adapters 10000] [--repeats 15]
"""

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

GOAL_S = 0.050
WORDS = ("watercolor ink paper cut neon pixel anime sketch oil portrait landscape cyber gothic pastel chrome "
         "marble glitch retro noir vapor bloom dusk frost ember moss").split()


def _rows(count: int, seed: int = 0):
    rng = random.Random(seed)
    for i in range(count):
        words = rng.sample(WORDS, 3)
        metadata = {f"ss_{k}": rng.random() for k in range(40)}
        metadata["ss_tag_frequency"] = {"set": {w: rng.randint(1, 50) for w in rng.sample(WORDS, 12)}}
        yield (f"{words[0]}-{words[1]}-{i}", f"/lib/{i}.safetensors", f"{i:064x}", 120_000, "kohya",
               rng.choice(["sd1", "sdxl", "llm"]), rng.choice(["builtin:tiny-sd", "sdxl-base"]), 8, 4.0,
               json.dumps(["to_q", "to_k", "to_v", "to_out.0"]), json.dumps(rng.sample(WORDS, 2)),
               json.dumps([words[2]]), f"notes about {words[1]} style, version {i % 7}", json.dumps(metadata))


def populate(db, count: int) -> None:
    with db.conn:
        db.conn.executemany(
            "INSERT INTO adapters (name, path, sha256, size, format, family, base_model, rank, alpha, "
            "target_modules, tags, trigger_words, notes, metadata) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            _rows(count))


def naive_search(db, word: str) -> list[dict]:
    from loratui.library.adapters import decode

    like = f"%{word}%"
    cursor = db.execute("SELECT * FROM adapters WHERE name LIKE ? OR tags LIKE ? OR trigger_words LIKE ? "
                        "OR notes LIKE ? ORDER BY id DESC LIMIT 50", [like] * 4)
    names = [d[0] for d in cursor.description]
    return [decode(dict(zip(names, r, strict=True))) for r in cursor.fetchall()]


def naive_list(db) -> list[dict]:
    from loratui.library.adapters import decode

    cursor = db.execute("SELECT * FROM adapters ORDER BY id DESC")
    names = [d[0] for d in cursor.description]
    return [decode(dict(zip(names, r, strict=True))) for r in cursor.fetchall()]


def paired(ours, theirs, repeats: int) -> tuple[float, float]:
    a, b = [], []
    for _ in range(repeats):
        for fn, sink in ((ours, a), (theirs, b)):
            start = time.perf_counter()
            fn()
            sink.append(time.perf_counter() - start)
    return statistics.median(a), statistics.median(b)


def report(name: str, ours: float, other: float, other_name: str) -> bool:
    ok = ours <= GOAL_S
    print(f"{name:<34} {ours * 1000:7.1f} ms  (goal {GOAL_S * 1000:.0f} ms: {ours / GOAL_S:4.2f} x, "
          f"{'ok' if ok else 'MISSED'})   {other_name} {other * 1000:7.1f} ms  ratio {ours / other:5.2f}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapters", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["LORATUI_HOME"] = tmp
        from loratui.commands.library import PAGE
        from loratui.db.library import open_db
        from loratui.library import adapters
        from loratui.library.render import table

        db = open_db()
        start = time.perf_counter()
        populate(db, args.adapters)
        print(f"{args.adapters} adapters inserted (FTS kept in step by triggers) in "
              f"{time.perf_counter() - start:.2f} s")
        assert len(adapters.list_adapters(db)) == args.adapters
        page = PAGE

        def cli_ls(**filters):
            rows = adapters.list_adapters(db, limit=page, **filters)
            return table(rows), adapters.count_adapters(db, **filters)

        results = [
            report(f"ls (CLI default: newest {page} + count)",
                   *paired(cli_ls, lambda: table(naive_list(db)[:page]), args.repeats), "SELECT * all, top"),
            report("ls --tag neon", *paired(lambda: cli_ls(tag="neon"),
                                            lambda: [r for r in naive_list(db) if "neon" in r["tags"]],
                                            args.repeats), "filter in Python"),
            report("ls --family sdxl --base sdxl-base",
                   *paired(lambda: cli_ls(family="sdxl", base="sdxl-base"),
                           lambda: [r for r in naive_list(db) if r["family"] == "sdxl"
                                    and r["base_model"] == "sdxl-base"], args.repeats), "filter in Python"),
            report("search 'marble'", *paired(lambda: adapters.search(db, "marble"),
                                              lambda: naive_search(db, "marble"), args.repeats), "LIKE scan"),
            report("search 'gothic neon' (2 words)", *paired(lambda: adapters.search(db, "gothic neon"),
                                                             lambda: naive_search(db, "gothic"), args.repeats),
                   "LIKE scan (1 word)"),
            report("search 'mar' (prefix)", *paired(lambda: adapters.search(db, "mar"),
                                                    lambda: naive_search(db, "mar"), args.repeats), "LIKE scan"),
            report("search, nothing matches", *paired(lambda: adapters.search(db, "zzzz"),
                                                      lambda: naive_search(db, "zzzz"), args.repeats),
                   "LIKE scan"),
        ]
        print("informational, not a goal: every row at once")
        report(f"ls --all ({args.adapters} rows, dicts)", *paired(lambda: adapters.list_adapters(db),
                                                                  lambda: naive_list(db), args.repeats), "SELECT *")
        report(f"ls --all ({args.adapters} rows, table)", *paired(lambda: table(adapters.list_adapters(db)),
                                                                  lambda: table(naive_list(db)), args.repeats),
               "SELECT * table")
        db.conn.close()
    print("all within goal" if all(results) else "SOME MISSED THE GOAL")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
