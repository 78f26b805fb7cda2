"""Run every benchmark module in bench/ that exposes ``main()``: ``python -m bench``."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def main() -> int:
    folder = Path(__file__).parent
    names = sorted(m.name for m in pkgutil.iter_modules([str(folder)]) if not m.name.startswith("_"))
    wanted = sys.argv[1:] or names
    for name in wanted:
        module = importlib.import_module(f"bench.{name}")
        if hasattr(module, "main"):
            print(f"== bench.{name}")
            sys.argv = [f"bench.{name}"]  # each bench reads its own options (or BENCH_* variables), not this list
            module.main()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
