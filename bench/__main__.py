"""Run benchmarks and write bench/results/<name>.json."""

from __future__ import annotations

import importlib
import json
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
ALL = (
    "consent",
    "audit",
    "data",
    "score",
    "train",
    "load",
    "scale",
    "grades",
    "signup",
    "platform",
    "alerts",
    "nodes",
)


def main(names: list[str]) -> int:
    RESULTS.mkdir(exist_ok=True)
    failed = 0
    for name in names or list(ALL):
        try:
            module = importlib.import_module(f"bench.{name}")
        except ModuleNotFoundError as e:
            print(f"bench {name}: not available ({e})", file=sys.stderr)
            continue
        started = time.time()
        try:
            figures = module.run()
        except Exception as e:  # one broken benchmark must not hide the others
            print(f"bench {name} failed: {type(e).__name__}: {e}", file=sys.stderr)
            failed += 1
            continue
        figures.setdefault("bench_seconds", round(time.time() - started, 1))
        text = json.dumps(figures, indent=2, ensure_ascii=False)
        (RESULTS / f"{name}.json").write_text(text + "\n", encoding="utf-8")
        print(text)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
