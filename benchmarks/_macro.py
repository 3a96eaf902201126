"""Macro benchmark: whole installs from a warm cache into a freshly made venv.

Per filesystem case every tool runs as a whole process, exactly as a user would run
it; the venv is made (``python -m venv --without-pip``) and removed outside the
timing, and each filesystem is flushed (``syncfs``) before the next timed step.

Every whole-process row comes twice: *new path* (each install goes to a venv at a
path never used before, so no tool can have cached anything about its interpreter)
and *same path* (the venv is deleted and made again at one fixed path, as
``rm -rf .venv && python -m venv .venv`` in tox/nox does: uv's interpreter cache is
warm).  The *api* rows call ``safelink.install()`` from this one process, one call
per fresh environment, the way a test runner embedding safelink would.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import safelink
from _common import (
    FsCase,
    Timed,
    log,
    observe_files,
    one_line,
    remove,
    rotated,
    run_timed,
    site_packages,
    summarize,
    syncfs,
    tool_env,
)
from safelink import Cache

FLOOR_FOR_MODE = {"hardlink": "cp -al", "clone": "cp -a --reflink=always", "copy": "cp -a"}
FLOOR_FLAGS = {
    "cp -al": ["-al"],
    "cp -a --reflink=always": ["-a", "--reflink=always"],
    "cp -a": ["-a"],
}
SAFELINK_MODES = ("auto", "clone", "hardlink", "copy")
UV_MODES = ("clone", "hardlink", "copy")
UV_DEFAULT = "clone"  # uv's default link mode on Linux (since 0.10.5)
PATHS = ("new", "same")  # venv at a never-used path / recreated at one fixed path
SAME = ", same path"  # key suffix of the same-path variant of a row
API = "safelink.install()"  # key prefix of the in-process rows
COLD_SL = "safelink auto, cold cache"
COLD_SL_STDLIB = "safelink auto, cold cache, stdlib zlib"  # zlib_ng import blocked
COLD_UV = "uv (default mode), cold cache"
SAT_FIRST = "safelink auto, first install (fills the satellite)"
SAT_SAMEFS = "safelink auto, cache on the env's filesystem"
_VENV_N = re.compile(r"<env dir>/venv-\d+")
_UV_INSTALLED = re.compile(r"Installed (\d+) packages? in ([\d.]+)(ms|s)\b")


@dataclass
class Corpus:
    label: str
    wheels: list[Path]
    tiny: Path
    tiny_label: str
    members: int = 0  # zip members in all wheels
    download_bytes: int = 0

    def describe(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "wheels": [w.name for w in self.wheels],
            "n_wheels": len(self.wheels),
            "zip_members": self.members,
            "download_bytes": self.download_bytes,
            "tiny": self.tiny.name,
        }


@dataclass
class MacroConfig:
    runs: int = 5
    full_warmup: bool = True  # False: only warm the caches (one install per tool)
    pip_runs: int = 1
    cold_runs: int = 1
    with_pip: bool = True
    with_cold: bool = True
    uv: str | None = None
    pip: list[str] | None = None
    zlib_ng: bool = False  # zlib_ng importable: measure cold installs with and without it


@dataclass
class Case:
    key: str  # unique label, e.g. "safelink hardlink", "uv clone, same path", "cp -al"
    tool: str  # safelink | api (in-process safelink.install()) | uv | pip | floor
    mode: str  # link mode asked for ("default" for uv's own default, floors: their flags)
    path: str = "new"  # venv path: "new" (never used before) or "same" (recreated)
    cache: str = "store"  # safelink's cache: on the store side, or "env" (same filesystem)
    fresh_satellite: bool = False  # delete the satellite cache first: the first install
    runs: list[float | None] = field(default_factory=list)
    did: str = ""
    info: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    skipped: str | None = None

    def result(self) -> dict[str, Any]:
        return {
            "tool": self.tool,
            "mode": self.mode,
            "path": self.path,
            "seconds": summarize([r for r in self.runs if r is not None]),
            "runs_by_index": self.runs,
            "did": self.did,
            "info": self.info,
            "warnings": self.warnings,
            "error": self.error,
            "skipped": self.skipped,
        }


class CaseFailed(Exception):
    pass


class MacroRunner:
    def __init__(self, case: FsCase, corpus: Corpus, cfg: MacroConfig) -> None:
        self.case = case
        self.corpus = corpus
        self.cfg = cfg
        self.sl_cache = case.store.sub("sl-cache")
        self.uv_cache = case.store.sub("uv-cache")
        self.venv = case.env.sub("venv")  # the "same path" venv
        # Across filesystems safelink keeps a satellite cache on the environment's side:
        # pinned to a directory of ours there (by default it would go to the mount root)
        self.satellite = case.env.sub("sl-satellite")
        self.sl_cache_env = case.env.sub("sl-cache-envfs")  # the same-filesystem reference
        self._venvs = 0  # counter for "new path" venvs
        self._api_cache: Cache | None = None
        self._block_zlib_ng: Path | None = None
        self.floor_dst = case.env.sub("floor")
        self.cold_sl = case.store.sub("sl-cache-cold")
        self.cold_uv = case.store.sub("uv-cache-cold")

    # -- steps outside the timing ------------------------------------------------

    def _fresh_venv(self, path: str = "new") -> Path:
        if path == "same":
            venv = self.venv
        else:
            self._venvs += 1
            venv = self.case.env.sub(f"venv-{self._venvs}")
        remove(venv)
        proc = subprocess.run(
            [sys.executable, "-m", "venv", "--without-pip", str(venv)],
            capture_output=True,
            text=True,
            env=tool_env(),
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"python -m venv failed: {one_line(proc.stderr)}")
        syncfs(self.case.env.root)  # nothing of the set-up is left to write back
        return venv

    # -- one measured step ---------------------------------------------------------

    def _argv(self, c: Case, wheels: list[Path], venv: Path, cache: Path | None) -> list[str]:
        w = [str(p) for p in wheels]
        if c.tool == "safelink":
            return [
                sys.executable, "-m", "safelink", "install", "--python", str(venv),
                "--cache-dir", str(cache or self.sl_cache), "--link-mode", c.mode, "--json", *w,
            ]  # fmt: skip
        if c.tool == "uv":
            assert self.cfg.uv is not None
            mode = [] if c.mode == "default" else ["--link-mode", c.mode]
            return [
                self.cfg.uv, "pip", "install", "--offline", "--no-deps",
                "--python", str(venv / "bin" / "python"), *mode, *w,
            ]  # fmt: skip
        if c.tool == "pip":
            assert self.cfg.pip is not None
            return [
                *self.cfg.pip, "--python", str(venv / "bin" / "python"), "install",
                "--no-deps", "--no-index", "--no-compile", "-q", *w,
            ]  # fmt: skip
        raise ValueError(c.tool)

    def measure(
        self,
        c: Case,
        wheels: list[Path],
        *,
        floor_src: Path | None = None,
        sl_cache: Path | None = None,
        uv_cache: Path | None = None,
        observe: bool = False,
        stdlib_zlib: bool = False,
    ) -> float:
        """Time one install (or one cp) and clean up; raise CaseFailed on failure."""
        venv = self.floor_dst
        if c.tool == "floor":
            assert floor_src is not None
            remove(self.floor_dst, self.case.env.root)
            out = self.floor_dst
            res = run_timed(["cp", *FLOOR_FLAGS[c.mode], str(floor_src), str(out)])
        elif c.tool == "api":
            venv = self._fresh_venv(c.path)
            out = site_packages(venv)
            res = self._api_install(c, wheels, venv, sl_cache)
        else:
            venv = self._fresh_venv(c.path)
            out = site_packages(venv)
            if c.fresh_satellite:
                remove(self.satellite, self.case.env.root)
            if c.cache == "env":
                sl_cache = self.sl_cache_env
            env = tool_env(
                {
                    "UV_CACHE_DIR": str(uv_cache or self.uv_cache),
                    "SAFELINK_SATELLITES": str(self.satellite),
                }
            )
            if stdlib_zlib:
                paths = (str(self._zlib_ng_blocker()), env.get("PYTHONPATH"))
                env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
            res = run_timed(self._argv(c, wheels, venv, sl_cache), env=env, cwd=self.case.env.root)
        try:
            if res.returncode != 0:
                lines = [ln for ln in (res.stderr + res.stdout).splitlines() if ln.strip()]
                raise CaseFailed(one_line(lines[-1] if lines else f"exit {res.returncode}"))
            self._note(c, res.stdout, res.stderr)
            if observe or not c.did:
                c.did = observe_files(out)
        finally:
            remove(venv, self.case.env.root)
        return res.seconds

    def _api_install(self, c: Case, wheels: list[Path], venv: Path, cache: Path | None) -> Timed:
        """One ``safelink.install()`` call in this process (the cache object is reused,
        as a test runner would keep it); a Timed like a subprocess's, report as JSON."""
        if cache is None:
            if self._api_cache is None:
                self._api_cache = Cache(self.sl_cache)
            cache_obj = self._api_cache
        else:
            cache_obj = Cache(cache)
        saved = os.environ.get("SAFELINK_SATELLITES")
        os.environ["SAFELINK_SATELLITES"] = str(self.satellite)
        t0 = time.perf_counter()
        try:
            rep = safelink.install(wheels, venv, cache=cache_obj, link_mode=c.mode)
        except safelink.SafelinkError as exc:
            return Timed(time.perf_counter() - t0, 1, "", f"safelink.install: {exc}")
        finally:
            if saved is None:
                del os.environ["SAFELINK_SATELLITES"]
            else:
                os.environ["SAFELINK_SATELLITES"] = saved
        secs = time.perf_counter() - t0
        return Timed(secs, 0, json.dumps(rep.to_dict(), default=str), "")

    def _zlib_ng_blocker(self) -> Path:
        """A directory that, first on PYTHONPATH, makes ``import zlib_ng`` fail: the
        same safelink with the standard library's zlib."""
        if self._block_zlib_ng is None:
            d = self.case.store.sub("no-zlib-ng") / "zlib_ng"
            d.mkdir(parents=True, exist_ok=True)
            (d / "__init__.py").write_text('raise ImportError("blocked by the benchmark")\n')
            self._block_zlib_ng = d.parent
        return self._block_zlib_ng

    def _note(self, c: Case, stdout: str, stderr: str) -> None:
        if c.tool in ("safelink", "api"):
            try:
                rep = json.loads(stdout)
            except ValueError:
                return
            c.info.setdefault("link_mode", rep.get("link_mode"))
            c.info["files_by_mode"] = rep.get("files_by_mode")
            c.info.setdefault("timings", []).append(rep.get("timings", {}))
            for w in rep.get("warnings", []):
                w = one_line(self._short(w))
                if w not in c.warnings:
                    c.warnings.append(w)
        elif c.tool == "uv":
            for line in stderr.splitlines():
                line = one_line(self._short(line))
                if line.lower().startswith("warning") and line not in c.warnings:
                    c.warnings.append(line)
            m = _UV_INSTALLED.search(stderr)
            if m:
                secs = float(m.group(2)) / (1000.0 if m.group(3) == "ms" else 1.0)
                c.info.setdefault("uv_reported_install_s", []).append(secs)

    def _short(self, text: str) -> str:
        """Tool messages name our temporary directories: shorten them for the notes."""
        for root, name in (
            (self.case.env.root, "<env dir>"),
            (self.case.store.root, "<store dir>"),
        ):
            text = text.replace(str(root), name)
        return _VENV_N.sub("<env dir>/venv", text)

    # -- the whole case -----------------------------------------------------------

    def _skip(self, c: Case) -> Case:
        fc = self.case
        if c.tool == "uv":  # uv never refuses a mode: it falls back (see "uv did")
            if self.cfg.uv is None:
                c.skipped = "uv is not on PATH"
        elif c.mode in ("clone", "cp -a --reflink=always") and not fc.can_clone:
            c.skipped = f"FICLONE does not work here ({fc.clone_error})"
        elif c.mode in ("hardlink", "cp -al") and not fc.can_link:
            c.skipped = f"link() does not work here ({fc.link_error})"
        return c

    def main_cases(self) -> list[Case]:
        cases: list[Case] = []
        for path in PATHS:
            suffix = SAME if path == "same" else ""
            for mode in SAFELINK_MODES:
                cases.append(self._skip(Case(f"safelink {mode}{suffix}", "safelink", mode, path)))
            for mode in UV_MODES:
                cases.append(self._skip(Case(f"uv {mode}{suffix}", "uv", mode, path)))
        for mode in SAFELINK_MODES:
            cases.append(self._skip(Case(f"{API} {mode}", "api", mode)))
        if self.case.cross:
            cases.append(Case(SAT_FIRST, "safelink", "auto", fresh_satellite=True))
            cases.append(Case(SAT_SAMEFS, "safelink", "auto", cache="env"))
        for floor in FLOOR_FLAGS:
            cases.append(self._skip(Case(floor, "floor", floor)))
        return cases

    def _run_round(
        self,
        cases: list[Case],
        run: int,
        label: str,
        record: bool,
        wheels: list[Path],
        floor_src: Path,
    ) -> None:
        active = [c for c in cases if c.skipped is None and c.error is None]
        for c in rotated(active, run):
            try:
                secs = self.measure(c, wheels, floor_src=floor_src)
            except CaseFailed as exc:
                c.error = str(exc)
                log(f"  {c.key}: FAILED ({exc})")
                continue
            if record:
                while len(c.runs) < run:
                    c.runs.append(None)
                c.runs.append(secs)
            log(f"  {label} {c.key:24s} {secs:8.3f} s   [{c.did}]")

    def run(self) -> dict[str, Any]:
        fc, cfg = self.case, self.cfg
        out: dict[str, Any] = {"cases": {}, "cold": {}, "tiny": {}, "notes": []}

        # Cold cache first: the first install, admission (unpacking) included.
        if cfg.with_cold and not fc.cross:
            cold = [Case(COLD_SL, "safelink", "auto")]
            if cfg.zlib_ng:
                cold.append(Case(COLD_SL_STDLIB, "safelink", "auto"))
            if cfg.uv:
                cold.append(Case(COLD_UV, "uv", "default"))
            for r in range(cfg.cold_runs):
                for c in rotated(cold, r):
                    remove(self.cold_sl)
                    remove(self.cold_uv, fc.store.root)
                    try:
                        secs = self.measure(
                            c,
                            self.corpus.wheels,
                            sl_cache=self.cold_sl,
                            uv_cache=self.cold_uv,
                            stdlib_zlib=c.key == COLD_SL_STDLIB,
                        )
                        c.runs.append(secs)
                        log(f"macro {fc.name}: cold {r + 1}/{cfg.cold_runs} {c.key}: {secs:.3f} s")
                    except CaseFailed as exc:
                        c.error = str(exc)
                        log(f"macro {fc.name}: cold {c.key} FAILED ({exc})")
                    remove(self.cold_sl)
                    remove(self.cold_uv, fc.store.root)
            out["cold"] = {c.key: c.result() for c in cold}
        elif fc.cross:
            out["notes"].append("cold cache: not measured across filesystems")

        cases = self.main_cases()
        for c in cases:
            if c.skipped:
                log(f"macro {fc.name}: skip {c.key}: {c.skipped}")

        # Warm the caches (and, in the full run, a whole warm-up round).
        log(f"macro {fc.name}: warming caches")
        warmers = [
            c
            for c in cases
            if c.skipped is None
            and c.key in ("safelink auto", "uv clone", SAT_SAMEFS, f"uv clone{SAME}")
        ]
        for c in warmers:
            try:
                self.measure(
                    Case(c.key, c.tool, c.mode, c.path, cache=c.cache), self.corpus.wheels
                )
            except CaseFailed as exc:
                c.error = f"warm-up failed: {exc}"
                log(f"  {c.key}: FAILED ({exc})")
        floor_src = Path(Cache(self.sl_cache).root) / "entries"
        if cfg.full_warmup:
            log(f"macro {fc.name}: warm-up round")
            self._run_round(cases, 0, "warm-up", False, self.corpus.wheels, floor_src)
        for r in range(cfg.runs):
            log(f"macro {fc.name}: run {r + 1}/{cfg.runs} ({len(cases)} cases)")
            self._run_round(cases, r, f"{r + 1}/{cfg.runs}", True, self.corpus.wheels, floor_src)

        if cfg.with_pip and cfg.pip:
            c = Case("pip install --no-deps", "pip", "pip")
            for r in range(cfg.pip_runs):
                try:
                    secs = self.measure(c, self.corpus.wheels)
                    c.runs.append(secs)
                    log(f"macro {fc.name}: pip {r + 1}/{cfg.pip_runs}: {secs:.3f} s")
                except CaseFailed as exc:
                    c.error = str(exc)
                    log(f"macro {fc.name}: pip FAILED ({exc})")
                    break
            cases.append(c)
        elif cfg.with_pip:
            out["notes"].append("pip: not found (neither this interpreter's nor one on PATH)")

        out["cases"] = {c.key: c.result() for c in cases}
        out["tiny"] = self._tiny()
        out["ratios"] = ratios(out["cases"])
        out["tiny_ratios"] = ratios(out["tiny"])
        out["corpus_in_cache"] = self._corpus_facts()
        return out

    def _tiny(self) -> dict[str, Any]:
        """One tiny wheel alone: the fixed start-up cost of each tool."""
        fc, cfg = self.case, self.cfg
        wheel = [self.corpus.tiny]
        cache = Cache(self.sl_cache)
        tiny = [
            Case("safelink auto", "safelink", "auto"),
            Case(f"safelink auto{SAME}", "safelink", "auto", "same"),
            Case(f"{API} auto", "api", "auto"),
        ]
        if cfg.uv:
            tiny.append(Case("uv (default mode)", "uv", "default"))
            tiny.append(Case(f"uv (default mode){SAME}", "uv", "default", "same"))
        tiny.append(Case("floor (cp)", "floor", "cp -al" if fc.can_link else "cp -a"))
        # warm both caches for the tiny wheel (also finds its cache entry), and the
        # same-path venv's interpreter facts
        for c in tiny:
            if c.tool == "floor":
                continue
            try:
                self.measure(Case(c.key, c.tool, c.mode, c.path), wheel)
            except CaseFailed as exc:
                c.error = str(exc)
        entry = cache.get(cache.wheel_sha256(str(self.corpus.tiny)))
        if entry is None:
            tiny[-1].error = "the tiny wheel is not in the safelink cache"
        src = Path(entry.path) if entry else Path("/nonexistent")
        for r in range(cfg.runs):
            for c in rotated([c for c in tiny if c.error is None], r):
                try:
                    c.runs.append(self.measure(c, wheel, floor_src=src))
                except CaseFailed as exc:
                    c.error = str(exc)
        if cfg.with_pip and cfg.pip:
            c = Case("pip install --no-deps", "pip", "pip")
            try:
                c.runs.append(self.measure(c, wheel))
            except CaseFailed as exc:
                c.error = str(exc)
            tiny.append(c)
        med = {c.key: summarize([x for x in c.runs if x is not None])["median"] for c in tiny}
        log(
            f"macro {fc.name}: tiny wheel ({self.corpus.tiny_label}): "
            + ", ".join(f"{k} {v:.3f} s" for k, v in med.items() if v is not None)
        )
        return {c.key: c.result() for c in tiny}

    def _corpus_facts(self) -> dict[str, Any]:
        cache = Cache(self.sl_cache)
        files = nbytes = 0
        for w in self.corpus.wheels:
            entry = cache.get(cache.wheel_sha256(str(w)))
            if entry is None:
                continue
            for rows in entry.plan.links.values():
                files += len(rows)
                nbytes += sum(r[2] for r in rows)
        return {"linked_files": files, "linked_bytes": nbytes}


def _per_run_ratio(a: dict[str, Any], b: dict[str, Any]) -> list[float]:
    ra, rb = a["runs_by_index"], b["runs_by_index"]
    return [
        x / y for x, y in zip(ra, rb, strict=False) if x is not None and y is not None and y > 0
    ]


def ratios(cases: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """safelink/uv and safelink/floor (and uv/floor), each from runs of the same round;
    for both venv paths, and the in-process rows against uv at its best (same path)."""
    out: dict[str, Any] = {}

    def add(name: str, a: str, b: str) -> None:
        if a in cases and b in cases:
            vals = _per_run_ratio(cases[a], cases[b])
            if vals:
                out[name] = {"a": a, "b": b, **summarize(vals)}

    auto_mode = (cases.get("safelink auto") or {}).get("info", {}).get("link_mode")
    for suffix in ("", SAME):
        for mode in ("clone", "hardlink", "copy"):
            add(f"safelink/uv {mode}{suffix}", f"safelink {mode}{suffix}", f"uv {mode}{suffix}")
            add(
                f"safelink/floor {mode}{suffix}",
                f"safelink {mode}{suffix}",
                FLOOR_FOR_MODE[mode],
            )
            add(f"uv/floor {mode}{suffix}", f"uv {mode}{suffix}", FLOOR_FOR_MODE[mode])
        add(f"safelink/uv auto{suffix}", f"safelink auto{suffix}", f"uv {UV_DEFAULT}{suffix}")
        if auto_mode in FLOOR_FOR_MODE:
            add(
                f"safelink/floor auto{suffix}",
                f"safelink auto{suffix}",
                FLOOR_FOR_MODE[auto_mode],
            )
    for mode in SAFELINK_MODES:
        uvm = UV_DEFAULT if mode == "auto" else mode
        add(f"api/uv {mode}", f"{API} {mode}", f"uv {uvm}{SAME}")
        add(f"api/safelink {mode}", f"{API} {mode}", f"safelink {mode}{SAME}")
    # across filesystems: later installs (from the satellite) against a cache on the
    # environment's filesystem, and the first install against copy mode
    add("satellite/same-fs auto", "safelink auto", SAT_SAMEFS)
    add("first/copy auto", SAT_FIRST, "safelink copy")
    add("first/uv auto", SAT_FIRST, f"uv {UV_DEFAULT}")
    # the one tiny wheel
    add("safelink/uv tiny", "safelink auto", "uv (default mode)")
    add(f"safelink/uv tiny{SAME}", f"safelink auto{SAME}", f"uv (default mode){SAME}")
    add("api/uv tiny", f"{API} auto", f"uv (default mode){SAME}")
    return out
