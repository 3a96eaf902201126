"""Benchmark suite entry point (placeholder until the suite lands)."""

from __future__ import annotations

import sys

if __name__ == "__main__":
    print("benchmarks: suite not yet available; nothing measured")
    sys.exit(0)
