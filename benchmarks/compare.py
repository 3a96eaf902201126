"""Before/after: ratios of two benchmark result files side by side, as Markdown.

    python benchmarks/compare.py benchmarks/results/baseline-2026-11-24.json \\
        benchmarks/results/latest.json

Ratios (not seconds) are compared: each was measured within one run, so two runs
on a noisy machine can still be set side by side.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

MODES = ("auto", "clone", "hardlink", "copy")


def _ratio(fs: dict[str, Any], key: str) -> float | None:
    r = fs.get("ratios", {}).get(key)
    return None if r is None else float(r["median"])


def _tiny(fs: dict[str, Any]) -> tuple[float | None, float | None]:
    tiny = fs.get("tiny", {})

    def med(name: str) -> float | None:
        case = next((v for k, v in tiny.items() if k.startswith(name)), None)
        return None if not case or "seconds" not in case else float(case["seconds"]["median"])

    return med("safelink"), med("uv")


def _cold(fs: dict[str, Any]) -> float | None:
    cold = fs.get("cold", {})
    s = next((v for k, v in cold.items() if k.startswith("safelink")), None)
    u = next((v for k, v in cold.items() if k.startswith("uv")), None)
    if not s or not u or "seconds" not in s or "seconds" not in u:
        return None
    return float(s["seconds"]["median"]) / float(u["seconds"]["median"])


def fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}x"


def main(argv: list[str]) -> int:
    before, after = (json.loads(Path(p).read_text()) for p in argv[:2])
    print("| filesystem | mode | safelink/uv before | after | safelink/floor before | after |")
    print("|---|---|---|---|---|---|")
    for fs_name, fs_after in after["macro"].items():
        fs_before = before["macro"].get(fs_name, {})
        for mode in MODES:
            ua = _ratio(fs_after, f"safelink/uv {mode}")
            ub = _ratio(fs_before, f"safelink/uv {mode}")
            fa = _ratio(fs_after, f"safelink/floor {mode}")
            fb = _ratio(fs_before, f"safelink/floor {mode}")
            if ua is None and ub is None:
                continue
            print(f"| {fs_name} | {mode} | {fmt(ub)} | **{fmt(ua)}** | {fmt(fb)} | **{fmt(fa)}** |")
    print()
    print("| filesystem | one tiny wheel: safelink/uv before | after | cold cache: safelink/uv "
          "before | after |")
    print("|---|---|---|---|---|")
    for fs_name, fs_after in after["macro"].items():
        fs_before = before["macro"].get(fs_name, {})
        sa, ua = _tiny(fs_after)
        sb, ub = _tiny(fs_before)
        ta = sa / ua if sa and ua else None
        tb = sb / ub if sb and ub else None
        print(f"| {fs_name} | {fmt(tb)} | **{fmt(ta)}** | {fmt(_cold(fs_before))} | "
              f"**{fmt(_cold(fs_after))}** |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
