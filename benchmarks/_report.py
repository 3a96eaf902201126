"""Turn the results dict into Markdown tables and one PNG plot per filesystem case."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from _macro import (
    API,
    COLD_SL,
    COLD_SL_STDLIB,
    COLD_UV,
    FLOOR_FOR_MODE,
    SAME,
    SAT_FIRST,
    SAT_SAMEFS,
    UV_DEFAULT,
)

MODES = ("auto", "clone", "hardlink", "copy")
DASH = "\u2013"  # en dash, for empty cells and ranges
TIMES = "\u00d7"  # multiplication sign, for ratios


def _s(stats: dict[str, Any] | None, digits: int = 3) -> str:
    """'median (min-max)' or a dash."""
    if not stats or stats.get("median") is None:
        return DASH
    med, lo, hi = stats["median"], stats["min"], stats["max"]
    if stats.get("n", 0) <= 1 or lo == hi:
        return f"{med:.{digits}f}"
    return f"{med:.{digits}f} ({lo:.{digits}f}{DASH}{hi:.{digits}f})"


def _ratio(r: dict[str, Any] | None) -> str:
    if not r or r.get("median") is None:
        return DASH
    if r.get("n", 0) <= 1 or r["min"] == r["max"]:
        return f"{r['median']:.2f}{TIMES}"
    return f"{r['median']:.2f}{TIMES} ({r['min']:.2f}{DASH}{r['max']:.2f})"


def _num(x: float | None) -> str:
    if x is None:
        return DASH
    if x >= 10000:
        return f"{x:,.0f}"
    if x >= 100:
        return f"{x:.0f}"
    return f"{x:.1f}"


def _case_cell(case: dict[str, Any] | None) -> str:
    if case is None:
        return DASH
    if case.get("skipped"):
        return "n/a¹"
    if case.get("error") and not case["seconds"]["n"]:
        return "failed²"
    return _s(case["seconds"])


def _did(case: dict[str, Any] | None) -> str:
    if not case or case.get("skipped") or not case.get("did"):
        return DASH
    did = str(case["did"])
    fbm = case.get("info", {}).get("files_by_mode")
    if case.get("tool") == "safelink" and fbm and len(fbm) > 1:
        did += " (" + ", ".join(f"{k} {v}" for k, v in fbm.items()) + ")"
    return did


def markdown(res: dict[str, Any]) -> str:
    m = res["machine"]
    cfg = res["config"]
    lines: list[str] = []
    add = lines.append
    add("# safelink benchmark results")
    add("")
    add(
        f"{m['date']} · Linux {m['kernel']} · {m['cpu_count']} CPUs ({m['cpu_model'] or '?'}) · "
        f"{m['memory']} · Python {m['python']} · safelink {m['safelink']} · "
        f"{m['uv'] or 'uv: not found'} · {m['pip'] or 'pip: not found'} · {m['cp'] or 'cp: ?'}"
    )
    add("")
    la0, la1 = res.get("loadavg_start") or [], res.get("loadavg_end") or []
    add(
        f"Load average (1/5/15 min) at start {'/'.join(map(str, la0)) or '?'}, at end "
        f"{'/'.join(map(str, la1)) or '?'} — the machine is shared, so read the "
        f"min{DASH}max ranges."
    )
    add(
        f"Mode: {'quick (smoke test)' if cfg['quick'] else 'full'}; {cfg['runs']} timed runs"
        f"{' after one warm-up round' if cfg['warmup'] else ''}; pip {cfg['pip_runs']} run(s); "
        f"cold cache {cfg['cold_runs']} run(s); total {res.get('elapsed_s', 0):.0f} s."
    )
    add("")
    add("Filesystems:")
    add("")
    for fs in res["filesystems"].values():
        where = (
            f"cache on {fs['store']['fstype']}, env on {fs['env']['fstype']}"
            if fs["cross_filesystem"]
            else f"{fs['store']['fstype']} ({fs['store']['path']})"
        )
        caps = []
        if not fs["hardlink_works"]:
            caps.append(f"no hardlinks: {fs['hardlink_error']}")
        if not fs["clone_works"]:
            caps.append(f"no FICLONE: {fs['clone_error']}")
        add(f"- **{fs['name']}**: {where}" + (f" — {'; '.join(caps)}" if caps else ""))
    add("")

    macro = res.get("macro") or {}
    if macro:
        corpus = res.get("corpus") or {}
        sample = next(iter(macro.values()), {}).get("corpus_in_cache", {})
        add("## Whole installs: warm cache → fresh venv")
        add("")
        add(
            f"Corpus: {corpus.get('label', '?')} — {corpus.get('n_wheels', '?')} wheels, "
            f"{sample.get('linked_files', 0):,} files linked, "
            f"{sample.get('linked_bytes', 0) / 1e6:,.0f} MB. Seconds of the whole process, "
            "median (min-max). Ratios are medians of per-round ratios (both sides timed in the "
            "same round, interleaved). *venv path*: `new` — every install goes to a venv at a "
            "path never used before; `same` — the venv is deleted and made again at one path "
            "(`rm -rf .venv && python -m venv .venv`, as tox and nox do), so uv's interpreter "
            "cache is warm. Floors: clone → `cp -a --reflink=always`, hardlink → "
            "`cp -al`, copy → `cp -a` (GNU cp, one process, of safelink's unpacked cache "
            f"entries). The *auto* row compares safelink's default with uv's ({UV_DEFAULT}) "
            "and with the floor of the mode auto chose."
        )
        add("")
        add(
            "| filesystem | mode | venv path | safelink s | uv s | floor s | safelink/uv "
            "| safelink/floor | uv/floor | safelink did | uv did |"
        )
        add("|---|---|---|---|---|---|---|---|---|---|---|")
        for name, fsres in macro.items():
            cases, rat = fsres["cases"], fsres.get("ratios", {})
            auto_mode = (cases.get("safelink auto") or {}).get("info", {}).get("link_mode")
            for mode in MODES:
                for path, sfx in (("new", ""), ("same", SAME)):
                    sl = cases.get(f"safelink {mode}{sfx}")
                    if sl is None:
                        continue
                    uvm = UV_DEFAULT if mode == "auto" else mode
                    uv = cases.get(f"uv {uvm}{sfx}")
                    fmode = auto_mode if mode == "auto" else mode
                    floor = cases.get(FLOOR_FOR_MODE.get(fmode or "", ""))
                    label = f"auto → {auto_mode}" if mode == "auto" and auto_mode else mode
                    uvf = _ratio(rat.get(f"uv/floor {uvm}{sfx}")) if mode != "auto" else DASH
                    add(
                        f"| {name} | {label} | {path} | {_case_cell(sl)} | {_case_cell(uv)} | "
                        f"{_case_cell(floor)} | {_ratio(rat.get(f'safelink/uv {mode}{sfx}'))} | "
                        f"{_ratio(rat.get(f'safelink/floor {mode}{sfx}'))} | {uvf} | "
                        f"{_did(sl)} | {_did(uv)} |"
                    )
        add("")
        add(
            "¹ n/a: the filesystem (pair) cannot do this; safelink refuses rather than silently "
            "doing something else (see Filesystems above). ² failed: see Notes. *did* is what "
            "ended up on disk, read back from the largest installed files: `hardlink` (link "
            "count > 1), `reflink` (FIEMAP shows shared extents: a clone, or a copy the kernel "
            "turned into one), or `copy`."
        )
        add("")

        api_rows = [
            (n, f) for n, f in macro.items() if any(k.startswith(API) for k in f["cases"])
        ]
        if api_rows:
            add("## In-process: `safelink.install()` per environment vs a uv subprocess")
            add("")
            add(
                "One Python process (this suite's) calls `safelink.install(wheels, venv, "
                "cache=cache, link_mode=MODE)` once per fresh venv, reusing one `Cache` object, "
                "as a test runner or an environment manager embedding safelink would; the uv "
                "column is `uv pip install` run as a subprocess into a venv at the same path "
                "(uv at its fastest: its interpreter cache is warm), timed in the same rounds. "
                "*whole-process safelink* is the same-path CLI row, for scale."
            )
            add("")
            add(
                "| filesystem | mode | safelink.install() s | uv s | whole-process safelink s "
                "| safelink.install()/uv | safelink.install()/whole-process |"
            )
            add("|---|---|---|---|---|---|---|")
            for name, fsres in api_rows:
                cases, rat = fsres["cases"], fsres.get("ratios", {})
                for mode in MODES:
                    api = cases.get(f"{API} {mode}")
                    if api is None or api.get("skipped"):
                        continue
                    uvm = UV_DEFAULT if mode == "auto" else mode
                    add(
                        f"| {name} | {mode} | {_case_cell(api)} | "
                        f"{_case_cell(cases.get(f'uv {uvm}{SAME}'))} | "
                        f"{_case_cell(cases.get(f'safelink {mode}{SAME}'))} | "
                        f"{_ratio(rat.get(f'api/uv {mode}'))} | "
                        f"{_ratio(rat.get(f'api/safelink {mode}'))} |"
                    )
            add("")

        sat_rows = [(n, f) for n, f in macro.items() if SAT_SAMEFS in f["cases"]]
        if sat_rows:
            add("## Across filesystems: a satellite cache on the environment's side")
            add("")
            add(
                "Cache on one filesystem, environments on another (new venv path). *later*: "
                "`safelink auto` once the satellite cache on the environments' filesystem "
                "holds the wheels (it links from there); *first*: the same with the satellite "
                "deleted just before (it copies each wheel into the satellite, then links); "
                "*same-fs cache*: a safelink cache on the environments' filesystem, for "
                f"reference; uv: its default mode ({UV_DEFAULT}), which copies every time. "
                "Seconds; ratios per round."
            )
            add("")
            add(
                "| case | later s | first s | same-fs cache s | safelink copy s | uv s "
                "| later/same-fs | later/uv | first/copy | later did |"
            )
            add("|---|---|---|---|---|---|---|---|---|---|")
            for name, fsres in sat_rows:
                cases, rat = fsres["cases"], fsres.get("ratios", {})
                later = cases.get("safelink auto")
                add(
                    f"| {name} | {_case_cell(later)} | {_case_cell(cases.get(SAT_FIRST))} | "
                    f"{_case_cell(cases.get(SAT_SAMEFS))} | "
                    f"{_case_cell(cases.get('safelink copy'))} | "
                    f"{_case_cell(cases.get(f'uv {UV_DEFAULT}'))} | "
                    f"{_ratio(rat.get('satellite/same-fs auto'))} | "
                    f"{_ratio(rat.get('safelink/uv auto'))} | "
                    f"{_ratio(rat.get('first/copy auto'))} | {_did(later)} |"
                )
            add("")

        add("## One tiny wheel alone (fixed start-up cost)")
        add("")
        tiny_keys: list[str] = []
        for fsres in macro.values():
            for k in fsres.get("tiny", {}):
                if k not in tiny_keys:
                    tiny_keys.append(k)
        add(
            f"Wheel: {res.get('corpus', {}).get('tiny', '?')}. Seconds, median (min{DASH}max). "
            "Floor: `cp -al` of the wheel's unpacked cache entry (`cp -a` where hardlinks "
            "cannot work)."
        )
        add("")
        tiny_ratios = (
            ("safelink/uv, new path", "safelink/uv tiny"),
            ("safelink/uv, same path", f"safelink/uv tiny{SAME}"),
            ("safelink.install()/uv", "api/uv tiny"),
        )
        add(
            "| filesystem | "
            + " | ".join(tiny_keys + [r[0] for r in tiny_ratios])
            + " |"
        )
        add("|---|" + "---|" * (len(tiny_keys) + len(tiny_ratios)))
        for name, fsres in macro.items():
            t = fsres.get("tiny", {})
            tr = fsres.get("tiny_ratios", {})
            add(
                f"| {name} | "
                + " | ".join(
                    [_case_cell(t.get(k)) for k in tiny_keys]
                    + [_ratio(tr.get(key)) for _, key in tiny_ratios]
                )
                + " |"
            )
        add("")

        cold_rows = [(n, f["cold"]) for n, f in macro.items() if f.get("cold")]
        if cold_rows:
            add("## Cold cache (first install: unpacking included)")
            add("")
            add(
                "safelink: empty `--cache-dir`, `--link-mode auto`; uv: empty `UV_CACHE_DIR`, "
                "its default mode. Seconds. *stdlib zlib*: the same safelink with the optional "
                "`zlib-ng` package hidden (inflating with the standard library's zlib)."
            )
            add("")
            add("| filesystem | safelink | safelink, stdlib zlib | uv | safelink/uv "
                "| stdlib zlib/zlib-ng |")
            add("|---|---|---|---|---|---|")
            for name, cold in cold_rows:
                sl, std, uv = cold.get(COLD_SL), cold.get(COLD_SL_STDLIB), cold.get(COLD_UV)
                add(
                    f"| {name} | {_case_cell(sl)} | {_case_cell(std)} | {_case_cell(uv)} | "
                    f"{_med_ratio(sl, uv)} | {_med_ratio(std, sl)} |"
                )
            add("")
            inf = res.get("inflate") or {}
            if inf.get("zlib") and inf.get("members"):
                ng = inf.get("zlib_ng")
                add(
                    f"Inflating and CRC-checking every deflated member of the corpus once "
                    f"({inf['members']:,} members, {inf['bytes_out'] / 1e6:,.0f} MB out, one "
                    f"thread, best of the rounds): zlib {inf['zlib_version']} "
                    f"{inf['zlib']:.3f} s"
                    + (
                        f", zlib-ng {inf.get('zlib_ng_version', '?')} {ng:.3f} s "
                        f"({inf['zlib'] / ng:.2f}{TIMES} faster)."
                        if ng
                        else " (zlib-ng is not installed)."
                    )
                )
                add("")

        pip_rows = [
            (n, f["cases"].get("pip install --no-deps"), f["cases"].get("safelink auto"))
            for n, f in macro.items()
        ]
        pip_rows = [r for r in pip_rows if r[1] is not None]
        if pip_rows:
            add("## pip, for reference")
            add("")
            add("`pip --python VENV install --no-deps --no-index --no-compile` of the same wheels.")
            add("")
            add("| filesystem | pip s | safelink auto s | pip/safelink |")
            add("|---|---|---|---|")
            for name, pip, sl in pip_rows:
                ratio = DASH
                if pip["seconds"]["median"] and sl and sl["seconds"]["median"]:
                    ratio = f"{pip['seconds']['median'] / sl['seconds']['median']:.1f}{TIMES}"
                add(f"| {name} | {_case_cell(pip)} | {_case_cell(sl)} | {ratio} |")
            add("")

        add("## Where safelink's time goes (in-process timings from `--json`, medians)")
        add("")
        add(
            "admit: tag check and finding every wheel in the cache; link: choosing the mode, "
            "journal, making directories and the link loop; finalize: scripts, metadata, "
            "RECORD; other: lock, crash recovery check, commit. The whole-process column adds "
            "interpreter start-up and imports."
        )
        add("")
        add(
            "| filesystem | mode | admit s | link s | finalize s | other s | in-process total s "
            "| whole process s |"
        )
        add("|---|---|---|---|---|---|---|---|")
        for name, fsres in macro.items():
            for mode in MODES:
                c = fsres["cases"].get(f"safelink {mode}")
                if not c or not c.get("info", {}).get("timings") or not c["seconds"]["n"]:
                    continue
                tims = c["info"]["timings"][-c["seconds"]["n"] :]
                med = {
                    k: sorted(t.get(k, 0.0) for t in tims)[len(tims) // 2]
                    for k in ("admit", "link", "finalize", "total")
                }
                other = max(0.0, med["total"] - med["admit"] - med["link"] - med["finalize"])
                add(
                    f"| {name} | {mode} | {med['admit']:.3f} | {med['link']:.3f} | "
                    f"{med['finalize']:.3f} | {other:.3f} | {med['total']:.3f} | "
                    f"{c['seconds']['median']:.3f} |"
                )
        add("")

    micro = res.get("micro") or {}
    if micro:
        names = list(micro)
        first = micro[names[0]]["sets"]
        small, big = first.get("small", {}), first.get("big", {})
        prims: list[str] = []
        for m_ in micro.values():
            for p in m_["primitives"]:
                if p not in prims:
                    prims.append(p)
        for set_name, metric, title in (
            ("small", "us_per_file", f"µs per file ({small.get('files', 0):,} small files, "
             f"{small.get('bytes', 0) / 1e6:.0f} MB)"),
            ("big", "mb_per_s", f"MB/s ({big.get('files', 0)} big files, "
             f"{big.get('bytes', 0) / 1e6:.0f} MB)"),
        ):  # fmt: skip
            add(f"## Hot loop: {title}")
            add("")
            add(
                "Median of the timed runs; lower is better for µs/file, higher for MB/s. "
                "n/a: the primitive cannot work there (reason in Notes)."
            )
            add("")
            add("| primitive | " + " | ".join(names) + " |")
            add("|---|" + "---|" * len(names))
            for p in prims:
                cells = []
                for n in names:
                    pr = micro[n]["primitives"].get(p)
                    if pr is None:
                        cells.append(DASH)
                    elif pr.get("skipped") or pr.get("error"):
                        cells.append("n/a")
                    else:
                        cells.append(_num(pr.get(set_name, {}).get(metric, {}).get("median")))
                add(f"| {p} | " + " | ".join(cells) + " |")
            add("")

    notes = _notes(res)
    if notes:
        add("## Notes")
        add("")
        for n in notes:
            add(f"- {n}")
        add("")
    return "\n".join(lines)


def _collapse(names: list[str]) -> str:
    """'safelink clone, safelink clone, no guard, ...' -> 'safelink clone (x4)'."""
    out: list[str] = []
    for n in names:
        base = n.split(",")[0]
        if base.startswith("safelink ") and base != n and any(o.startswith(base) for o in out):
            continue
        variants = [m for m in names if m.split(",")[0] == base]
        out.append(
            f"{base} ({TIMES}{len(variants)})"
            if base.startswith("safelink ") and len(variants) > 1
            else n
        )
    return ", ".join(out)


def _notes(res: dict[str, Any]) -> list[str]:
    notes: list[str] = list(res.get("notes", []))
    grouped: dict[tuple[str, str], list[str]] = {}
    for name, fsres in (res.get("macro") or {}).items():
        for n in fsres.get("notes", []):
            notes.append(f"{name}: {n}")
        for group in ("cases", "cold", "tiny"):
            for key, c in (fsres.get(group) or {}).items():
                texts = []
                if c.get("skipped"):
                    texts.append(f"skipped: {c['skipped']}")
                if c.get("error"):
                    texts.append(f"FAILED: {c['error']}")
                texts += [f"warned: {w}" for w in c.get("warnings", [])[:1]]
                for t in texts:
                    keys = grouped.setdefault((name, t), [])
                    if key not in keys:
                        keys.append(key)
    for (name, text), keys in grouped.items():
        notes.append(f"{name}: {', '.join(keys)} — {text}")
    micro_grouped: dict[tuple[str, str], list[str]] = {}
    for name, m in (res.get("micro") or {}).items():
        for p, pr in m["primitives"].items():
            if pr.get("skipped"):
                micro_grouped.setdefault((name, f"n/a: {pr['skipped']}"), []).append(p)
            elif pr.get("error"):
                micro_grouped.setdefault((name, f"n/a: {pr['error']}"), []).append(p)
    for (name, text), prims in micro_grouped.items():
        notes.append(f"hot loop on {name}: {_collapse(prims)} — {text}")
    return notes


# ------------------------------------------------------------------------- plots


def plots(res: dict[str, Any], outdir: Path) -> list[Path]:
    """One PNG per filesystem case: seconds and ratio to the floor, tool x mode."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    written: list[Path] = []
    for name, fsres in (res.get("macro") or {}).items():
        cases = fsres["cases"]
        auto_mode = (cases.get("safelink auto") or {}).get("info", {}).get("link_mode")
        groups = [
            m
            for m in MODES
            if _med(cases.get(f"safelink {m}"))
            or _med(cases.get(f"uv {UV_DEFAULT if m == 'auto' else m}"))
        ]
        if not groups:
            continue
        tools = ("safelink", "uv", "floor (cp)")
        colors = ("#2b6cb0", "#dd6b20", "#718096")
        fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.4), dpi=80)
        width = 0.26
        for ti, tool in enumerate(tools):
            secs, lo, hi, rats = [], [], [], []
            for m in groups:
                fmode = auto_mode if m == "auto" else m
                key = {
                    "safelink": f"safelink {m}",
                    "uv": f"uv {UV_DEFAULT if m == 'auto' else m}",
                    "floor (cp)": FLOOR_FOR_MODE.get(fmode or "", ""),
                }[tool]
                c = cases.get(key)
                med = _med(c)
                secs.append(med or 0.0)
                lo.append((med - c["seconds"]["min"]) if med and c else 0.0)
                hi.append((c["seconds"]["max"] - med) if med and c else 0.0)
                floor = _med(cases.get(FLOOR_FOR_MODE.get(fmode or "", "")))
                # prefer the median of per-round ratios (as in the table)
                rkey = {"safelink": f"safelink/floor {m}", "uv": f"uv/floor {m}"}.get(tool)
                per_round = (fsres.get("ratios", {}).get(rkey or "") or {}).get("median")
                if tool == "floor (cp)":
                    rats.append(1.0 if floor else 0.0)
                elif per_round:
                    rats.append(per_round)
                else:
                    rats.append(med / floor if med and floor else 0.0)
            xs = [i + (ti - 1) * width for i in range(len(groups))]
            ax1.bar(xs, secs, width, yerr=[lo, hi], label=tool, color=colors[ti], capsize=2)
            ax2.bar(xs, rats, width, label=tool, color=colors[ti])
            for x, v in zip(xs, secs, strict=True):
                if not v:
                    for ax in (ax1, ax2):
                        ax.text(x, 0, "n/a", ha="center", va="bottom", fontsize=6, rotation=90)
        labels = [f"auto→{auto_mode}" if m == "auto" and auto_mode else m for m in groups]
        for ax in (ax1, ax2):
            ax.set_xticks(range(len(groups)))
            ax.set_xticklabels(labels, fontsize=8)
            ax.tick_params(axis="y", labelsize=8)
            ax.grid(axis="y", alpha=0.3)
        ax1.set_ylabel("seconds (median, min-max)", fontsize=8)
        ax2.set_ylabel(f"{TIMES} floor (cp) of that mode", fontsize=8)
        ax2.axhline(1.0, color="black", linewidth=0.8)
        handles, names = ax1.get_legend_handles_labels()
        fig.legend(handles, names, fontsize=7, loc="upper right", ncol=3, frameon=False)
        pip = _med(cases.get("pip install --no-deps"))
        title = f"{name}: whole install, warm cache → new venv"
        if pip:
            title += f"  (pip: {pip:.1f} s, off scale)"
        fig.suptitle(title, fontsize=9, x=0.01, ha="left")
        fig.tight_layout(rect=(0, 0, 1, 0.93))
        path = outdir / f"{_slug(name)}.png"
        fig.savefig(path, dpi=80)
        plt.close(fig)
        written.append(path)
    return written


def _med_ratio(a: dict[str, Any] | None, b: dict[str, Any] | None) -> str:
    ma, mb = _med(a), _med(b)
    return f"{ma / mb:.2f}{TIMES}" if ma and mb else DASH


def _med(c: dict[str, Any] | None) -> float | None:
    if not c or c.get("skipped"):
        return None
    v = c["seconds"].get("median")
    return float(v) if v else None


def _slug(name: str) -> str:
    out = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in name.replace("→", "-to-"))
    return out.strip("-") or "fs"
