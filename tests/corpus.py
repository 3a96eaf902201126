"""A pinned corpus of real wheels from PyPI, downloaded once into a local cache.

Stdlib only, so that the benchmark suite can import it with ``sys.path`` pointing at
``tests/``.  Every wheel is pinned by exact file name and sha256; every file handed out
by :func:`fetch` has been verified against its pin.

Two tiers, plus the wheels of the journey tests:

* :data:`TEST_WHEELS` -- small and fast (9 wheels, 3,092 zip members, 5.5 MB in all),
  covering the wheel shapes an installer must get right (entry points, ``.data/scripts``
  with ``#!python``, ``.data/data``, ``.data/headers``, compiled abi3 platlib, thousands
  of files, ...).
* :data:`BENCH_WHEELS` -- a superset for benchmarks: 24 wheels, 32,272 zip members,
  147 MB of downloads (465 MB unpacked), with big compiled wheels and wheels of thousands
  of small files.

Every wheel installs on CPython 3.10-3.13 on Linux x86_64 (glibc >= 2.28): each one is
either pure (``py3-none-any``), ``py3-none-manylinux`` (a bundled executable, no Python
ABI) or ``cp3X-abi3-manylinux`` with X <= 9.  Where a project publishes several
manylinux variants, the pinned file is the one pip picks for CPython 3.10-3.13 here.

How downloads work: straight from ``files.pythonhosted.org`` with ``urllib`` (proxy
variables are honoured, as is ``PIP_CERT``/``SSL_CERT_FILE`` for the CA bundle).  If that
fails, it falls back to ``python -m pip download`` of the exact ``NAME==VERSION`` with
``--python-version/--implementation/--abi/--platform`` taken from the pinned file name,
so that pip's configured index (a mirror, say) is used.  Either way the file is written
to a temporary name in the cache directory, its size and sha256 are checked, and only
then is it renamed into place.

Command line::

    python tests/corpus.py list [--bench]
    python tests/corpus.py fetch [--bench] [--dest DIR] [--via auto|urllib|pip] [--rehash]
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import os
import re
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

__all__ = [
    "AWSCLI_WHEELS",
    "BENCH_WHEELS",
    "JOURNEY_WHEELS",
    "SHAPES",
    "TEST_WHEELS",
    "CorpusError",
    "PinnedWheel",
    "awscli_wheels",
    "by_name",
    "fetch",
    "for_this_python",
    "normalize_name",
    "wheel_cache_dir",
]

Via = Literal["auto", "urllib", "pip"]

#: Names used in :attr:`PinnedWheel.shapes`; ``tests/test_corpus.py`` checks each claim
#: against the real file.
SHAPES: frozenset[str] = frozenset(
    {
        "tiny",  # <= 20 zip members and <= 100 kB
        "console_scripts",  # entry_points.txt has a [console_scripts] entry
        "gui_scripts",  # entry_points.txt has a [gui_scripts] entry
        "data_scripts_shebang",  # a <dist>.data/scripts/ member starting with b"#!python"
        "data_scripts_binary",  # a <dist>.data/scripts/ member that is an ELF executable
        "data_data",  # members under <dist>.data/data/
        "data_headers",  # members under <dist>.data/headers/
        "platlib",  # WHEEL says Root-Is-Purelib: false
        "extension",  # a compiled extension module (ELF .so)
        "abi3",  # tagged cp3X-abi3 with *.abi3.so extension modules
        "many_files",  # >= 1,000 zip members
        "dir_entries",  # the zip has explicit directory entries
        "exec_bits",  # regular members with an executable mode outside .data/scripts
        "big_file",  # one member of >= 50 MiB uncompressed
        "large",  # the wheel itself is >= 10 MiB
        "nested_dist_info",  # *.dist-info/ directories below the top level (vendored)
    }
)

_ENV_CACHE_DIR = "SAFELINK_TEST_WHEELS"
_MARKER_SUFFIX = ".sha256-ok"
_CHUNK = 1 << 20
_TIMEOUT = 60.0
_ATTEMPTS = 3


class CorpusError(RuntimeError):
    """A wheel could not be fetched or does not match its pin (message is one line)."""


def normalize_name(name: str) -> str:
    """PEP 503 normalization: ``Jupyterlab_Pygments`` -> ``jupyterlab-pygments``."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class PinnedWheel:
    """One exact wheel file on PyPI."""

    name: str  # PEP 503 normalized project name
    version: str
    filename: str
    sha256: str
    url: str
    why: str  # which shape it covers
    size: int = 0  # bytes of the .whl; 0 = not pinned
    n_files: int = 0  # zip members, directory entries included; 0 = not pinned
    shapes: tuple[str, ...] = ()  # claims from SHAPES, checked by tests/test_corpus.py

    def local_path(self, dest: Path | None = None) -> Path:
        """Where :func:`fetch` puts (or has put) this wheel."""
        return (wheel_cache_dir() if dest is None else dest) / self.filename

    @property
    def tags(self) -> tuple[str, str, str]:
        """``(python, abi, platform)`` tag strings from the file name."""
        parts = self.filename[: -len(".whl")].split("-")
        return parts[-3], parts[-2], parts[-1]


def _files(path: str, filename: str) -> str:
    return f"https://files.pythonhosted.org/packages/{path}/{filename}"


# fmt: off
TEST_WHEELS: tuple[PinnedWheel, ...] = (
    PinnedWheel(
        "six", "1.17.0", "six-1.17.0-py2.py3-none-any.whl",
        "4721f391ed90541fddacab5acf947aa0d3dc7d27b2e1e8eda2be8970586c3274",
        _files("b7/ce/149a00dd41f10bc29e5921b496af8b574d8413afcd5e30dfa0ed46c2cc5e",
               "six-1.17.0-py2.py3-none-any.whl"),
        "tiny: a single top-level module, 6 members, py2.py3 tag; for fast tests",
        size=11050, n_files=6, shapes=("tiny",),
    ),
    PinnedWheel(
        "idna", "3.10", "idna-3.10-py3-none-any.whl",
        "946d195a0d259cbba61165e88e65941f16e9b36ea6ddb97f00452bae8b1287d3",
        _files("76/c6/c88e154df9c4e1a2a66ccf0005a88dfb2650c1dffb6f5ce603dfbd452ce3",
               "idna-3.10-py3-none-any.whl"),
        "tiny: a small pure package (13 members, one 240 kB data module)",
        size=70442, n_files=13, shapes=("tiny",),
    ),
    PinnedWheel(
        "pyflakes", "3.2.0", "pyflakes-3.2.0-py2.py3-none-any.whl",
        "84b5be138a2dfbb40689ca07e2152deb896a65c3a3e24c251c5c62489568074a",
        _files("d4/d7/f1b7db88d8e4417c5d47adad627a93547f44bdc9028372dbd2313f34a855",
               "pyflakes-3.2.0-py2.py3-none-any.whl"),
        "console_scripts entry point (pyflakes = pyflakes.api:main) in a small pure wheel",
        size=62725, n_files=27, shapes=("console_scripts",),
    ),
    PinnedWheel(
        "docutils", "0.19", "docutils-0.19-py3-none-any.whl",
        "5e1de4d849fee02c63b040a4a3fd567f4ab104defd8a5511fbbc24a8a017efbc",
        _files("93/69/e391bd51bc08ed9141ecd899a0ddb61ab6465309f1eb470905c0c8868081",
               "docutils-0.19-py3-none-any.whl"),
        "12 .data/scripts/rst2*.py starting with '#!python' (shebang rewrite, mode 755)"
        " plus a console_scripts entry point",
        size=570472, n_files=214, shapes=("data_scripts_shebang", "console_scripts"),
    ),
    PinnedWheel(
        "jupyterlab-pygments", "0.3.0", "jupyterlab_pygments-0.3.0-py3-none-any.whl",
        "841a89020971da1d8693f1a99997aefc5dc424bb1b251fd6322462a1b8842780",
        _files("b1/dd/ead9d8ea85bf202d90cc513b533f9c363121c7792674f78e0d8a854b63b4",
               "jupyterlab_pygments-0.3.0-py3-none-any.whl"),
        ".data/data/share/jupyter/labextensions/... (data scheme) in a tiny wheel;"
        " underscore in the file name vs '-' in the project name",
        size=15884, n_files=14, shapes=("tiny", "data_data"),
    ),
    PinnedWheel(
        "pybind11-global", "2.13.6", "pybind11_global-2.13.6-py3-none-any.whl",
        "aa5142ebf5a1bdaf8945997f62cc2f2e883ded4f9aa48b4925fc2646ea4bea6d",
        _files("21/ee/8ab74ca797f609bc5563fb6989c02a0535d8b836c7ec6c45c8a37b19950f",
               "pybind11_global-2.13.6-py3-none-any.whl"),
        ".data/headers/ (C++ headers, headers scheme, nested dirs) and .data/data/"
        " (include/ and share/cmake, share/pkgconfig)",
        size=439480, n_files=86, shapes=("data_headers", "data_data"),
    ),
    PinnedWheel(
        "bcrypt", "4.2.1", "bcrypt-4.2.1-cp39-abi3-manylinux_2_28_x86_64.whl",
        "687cf30e6681eeda39548a93ce9bfbb300e48b4d445a43db4298d2474d2a1e54",
        _files("d6/c3/4b4bad4da852924427c651589d464ad1aa624f94dd904ddda8493b0a35e5",
               "bcrypt-4.2.1-cp39-abi3-manylinux_2_28_x86_64.whl"),
        "compiled abi3 extension (bcrypt/_bcrypt.abi3.so, mode 755) in a platlib wheel"
        " (Root-Is-Purelib: false); zip has directory entries",
        size=278614, n_files=11,
        shapes=("platlib", "extension", "abi3", "dir_entries", "exec_bits"),
    ),
    PinnedWheel(
        "jedi", "0.19.2", "jedi-0.19.2-py2.py3-none-any.whl",
        "a8ef22bde8490f57fe5c7681a3c83cb58874daf72b4784de3cce5b6ef6edb5b9",
        _files("c0/5a/9cac0c82afec3d09ccd97c8b6502d48f165f9124db81b4bcb90b4af974ee",
               "jedi-0.19.2-py2.py3-none-any.whl"),
        "thousands of small files: 1,880 members (bundled typeshed .pyi stubs), 1.5 MB",
        size=1572278, n_files=1880, shapes=("many_files",),
    ),
    PinnedWheel(
        "thonny", "4.1.6", "thonny-4.1.6-py3-none-any.whl",
        "1c1d9d976dfdc056a91b15a8fb48812f6dd37bad63d6ea3106f39414e8363a65",
        _files("60/26/bbfd01df4406aec7071423ef07777cbd7e43327a81f5ab391b6916f369ce",
               "thonny-4.1.6-py3-none-any.whl"),
        "gui_scripts entry point (thonny = thonny:launch); 841 members incl. images",
        size=2524617, n_files=841, shapes=("gui_scripts",),
    ),
)

_BENCH_ONLY: tuple[PinnedWheel, ...] = (
    PinnedWheel(
        "plotly", "5.24.1", "plotly-5.24.1-py3-none-any.whl",
        "f67073a1e637eb0dc3e46324d9d51e2fe76e9727c892dde64ddf1e1b51f29089",
        _files("e5/ae/580600f441f6fc05218bd6c9d5794f4aef072a7d9093b291f1c50a9db8bc",
               "plotly-5.24.1-py3-none-any.whl"),
        "15,319 members (generated validators), 62 MB unpacked, plus .data/data"
        " (share/jupyter lab+nb extensions, etc/jupyter config)",
        size=19054220, n_files=15319, shapes=("many_files", "data_data", "large"),
    ),
    PinnedWheel(
        "django", "5.2.8", "django-5.2.8-py3-none-any.whl",
        "37e687f7bd73ddf043e2b6b97cfe02fcbb11f2dbb3adccc6a2b18c6daa054d7f",
        _files("5e/3d/a035a4ee9b1d4d4beee2ae6e8e12fe6dee5514b21f62504e22efcbd9fb46",
               "django-5.2.8-py3-none-any.whl"),
        "3,667 members (.py, templates, static, locale .po/.mo), console_scripts,"
        " one executable template",
        size=8289692, n_files=3667, shapes=("many_files", "console_scripts", "exec_bits"),
    ),
    PinnedWheel(
        "sympy", "1.13.3", "sympy-1.13.3-py3-none-any.whl",
        "54612cf55a62755ee71824ce692986f23c88ffa77207b30c1368eda4a7060f73",
        _files("99/ff/c87e0622b1dadea79d2fb0b25ade9ed98954c9033722eb707053d310d4f3",
               "sympy-1.13.3-py3-none-any.whl"),
        "1,555 mostly large .py files (26 MB unpacked), console_scripts, .data/data"
        " (man page)",
        size=6189483, n_files=1555, shapes=("many_files", "console_scripts", "data_data"),
    ),
    PinnedWheel(
        "cmake", "3.31.6",
        "cmake-3.31.6-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "1c8b05df0602365da91ee6a3336fe57525b137706c4ab5675498f662ae1dbcec",
        _files("59/e8/096984b89133681533650b9078c5ed1c5c9b534e869b5487f22d4de1935c",
               "cmake-3.31.6-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"),
        "big executables (3 x ~19 MB ELF, mode 755) inside the package plus 3,800 module"
        " files; py3-none-manylinux platlib; console_scripts; directory entries",
        size=27800904, n_files=3875,
        shapes=("many_files", "platlib", "console_scripts", "dir_entries", "exec_bits",
                "large"),
    ),
    PinnedWheel(
        "ruff", "0.8.6",
        "ruff-0.8.6-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "7ae4478b1471fc0c44ed52a6fb787e641a2ac58b1c1f91763bafbc2faddc5117",
        _files("68/84/21f578c2a4144917985f1f4011171aeff94ab18dfa5303ac632da2f9af36",
               "ruff-0.8.6-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"),
        "one 31 MB native executable in .data/scripts/ (no shebang to rewrite), 7 members",
        size=11251801, n_files=7, shapes=("data_scripts_binary", "platlib", "large"),
    ),
    PinnedWheel(
        "cryptography", "44.0.0", "cryptography-44.0.0-cp39-abi3-manylinux_2_28_x86_64.whl",
        "f53c2c87e0fb4b0c00fa9571082a057e37690a8f12233306161c8f4b819960b7",
        _files("ef/82/72403624f197af0db6bac4e58153bc9ac0e6020e57234115db9596eee85d",
               "cryptography-44.0.0-cp39-abi3-manylinux_2_28_x86_64.whl"),
        "compiled abi3: one 11 MB Rust extension plus 130 .py/.pyi files, dir entries",
        size=4155160, n_files=137,
        shapes=("platlib", "extension", "abi3", "dir_entries", "exec_bits"),
    ),
    PinnedWheel(
        "psutil", "6.1.1",
        "psutil-6.1.1-cp36-abi3-manylinux_2_12_x86_64.manylinux2010_x86_64"
        ".manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "97f7cb9921fbec4904f522d972f0c0e1f4fabbdd4e0287813b21215074a0f160",
        _files("9c/39/0f88a830a1c8a3aba27fededc642da37613c57cbff143412e3536f89784f",
               "psutil-6.1.1-cp36-abi3-manylinux_2_12_x86_64.manylinux2010_x86_64"
               ".manylinux_2_17_x86_64.manylinux2014_x86_64.whl"),
        "two small abi3 extensions; four compressed platform tags in the file name",
        size=287477, n_files=38,
        shapes=("platlib", "extension", "abi3", "dir_entries", "exec_bits"),
    ),
    PinnedWheel(
        "tokenizers", "0.21.0",
        "tokenizers-0.21.0-cp39-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "e84ca973b3a96894d1707e189c14a774b701596d579ffc7e69debfc036a61a04",
        _files("22/06/69d7ce374747edaf1695a4f61b83570d91cc8bbfc51ccfecf76f56ab4aac",
               "tokenizers-0.21.0-cp39-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"),
        "compiled abi3 (maturin): one 9 MB extension, .pyi stubs",
        size=3008868, n_files=28, shapes=("platlib", "extension", "abi3", "exec_bits"),
    ),
    PinnedWheel(
        "polars", "1.20.0",
        "polars-1.20.0-cp39-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "4996e17cb6f57d9aeaf79f66c54ef2913cea7bd025410c076ef8c05d4f7d792a",
        _files("2a/1a/862b8bf65182b261022292a1cd49728db876a1ef64ff377d6f7b17653886",
               "polars-1.20.0-cp39-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"),
        "one huge file: a 101 MB abi3 extension (33 MB compressed)",
        size=32850943, n_files=172,
        shapes=("platlib", "extension", "abi3", "exec_bits", "big_file", "large"),
    ),
    PinnedWheel(
        "babel", "2.16.0", "babel-2.16.0-py3-none-any.whl",
        "368b5b98b37c06b7daf6696391c3240c938b37767d4584413e8438c5c435fa8b",
        _files("ed/20/bc79bc575ba2e2a7f70e8a1155618bb1301eaa5132a8271373a6903f73f8",
               "babel-2.16.0-py3-none-any.whl"),
        "1,080 pickled locale-data files (29 MB unpacked), console_scripts",
        size=9587599, n_files=1080, shapes=("many_files", "console_scripts"),
    ),
    PinnedWheel(
        "setuptools", "75.8.0", "setuptools-75.8.0-py3-none-any.whl",
        "e3982f444617239225d675215d51f6ba05f845d4eec313da4418fdbb56fb27e3",
        _files("69/8a/b9dc7678803429e4a3bc9ba462fa3dd9066824d3c607490235c6a796be5a",
               "setuptools-75.8.0-py3-none-any.whl"),
        "503 members: vendored packages with their own nested *.dist-info/RECORD (only"
        " the top-level one counts), *.exe launchers, a top-level .pth file",
        size=1228782, n_files=503, shapes=("nested_dist_info",),
    ),
    PinnedWheel(
        "pip", "24.3.1", "pip-24.3.1-py3-none-any.whl",
        "3790624780082365f47549d032f3770eeb2b1e8bd1f7b2e02dace1afa361b4ed",
        _files("ef/7d/500c9ad20238fcfcb4cb9243eede163594d7020ce87bd9610c9e02771876",
               "pip-24.3.1-py3-none-any.whl"),
        "437 members incl. deep vendored trees and cacert.pem; 2 console_scripts",
        size=1822182, n_files=437, shapes=("console_scripts",),
    ),
    PinnedWheel(
        "tzdata", "2024.2", "tzdata-2024.2-py2.py3-none-any.whl",
        "a48093786cdcde33cad18c2555e8532f34422074448fbc874186f0abd79565cd",
        _files("a6/ab/7e5f53c3b9d14972843a647d8d7a853969a58aecc7559cb3267302c94774",
               "tzdata-2024.2-py2.py3-none-any.whl"),
        "632 tiny binary files (mean under 1 kB): per-file overhead dominates",
        size=346586, n_files=632, shapes=(),
    ),
    PinnedWheel(
        "mypy", "1.14.1", "mypy-1.14.1-py3-none-any.whl",
        "b66a60cc4073aeb8ae00057f9c1f64d49e90f918fbcef9a977eb121da8b8f1d1",
        _files("a0/b5/32dd67b69a16d088e533962e5044e51004176a9952419de0370cdaead0f8",
               "mypy-1.14.1-py3-none-any.whl"),
        "pure (non-mypyc) build: 1,196 members incl. typeshed stubs, 5 console_scripts",
        size=2752905, n_files=1196, shapes=("many_files", "console_scripts"),
    ),
    PinnedWheel(
        "notebook", "7.3.2", "notebook-7.3.2-py3-none-any.whl",
        "e5f85fc59b69d3618d73cf27544418193ff8e8058d5bf61d315ce4f473556288",
        _files("22/9b/76e50ee18f183ea5fe1784a9eeaa50f2c71802e4740d6e959592b0993298",
               "notebook-7.3.2-py3-none-any.whl"),
        "59 MB unpacked: JS bundles in the package and in .data/data/share/jupyter,"
        " .data/data/etc config; console_scripts",
        size=13163630, n_files=534, shapes=("data_data", "console_scripts", "large"),
    ),
)

# One numpy per CPython minor version (cp3X-cp3X: no stable ABI).
_NUMPY = {
    10: ("fc7b73d02efb0e18c000e9ad8b83480dfcd5dfd11065997ed4c6747470ae8915", 16801050, 1102,
         "b4/63/3de6a34ad7ad6646ac7d2f55ebc6ad439dbbf9c4370017c50cf403fb19b5"),
    11: ("ba10f8411898fc418a521833e014a77d3ca01c15b0c6cdcce6a0d2897e6dbbdf", 16821570, 1102,
         "b3/dd/2238b898e51bd6d389b7389ffb20d7f4c10066d80351187ec8e303a5a475"),
    12: ("fd83c01228a688733f1ded5201c678f0c53ecc1006ffbc404db9f7a899ac6249", 16527618, 967,
         "8c/3d/1e1db36cfd41f895d266b103df00ca5b3cbe965184df824dec5c08c6b803"),
    13: ("1bc23a79bfabc5d056d106f9befb8d50c31ced2fbc70eedb8155aec74a45798f", 16526072, 967,
         "19/49/4df9123aafa7b539317bf6d342cb6d227e49f7a35b99c287a6109b13dd93"),
}


def _numpy(minor: int) -> PinnedWheel:
    sha, size, n_files, where = _NUMPY[minor]
    filename = f"numpy-2.2.6-cp3{minor}-cp3{minor}-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
    return PinnedWheel(
        "numpy", "2.2.6", filename, sha, _files(where, filename),
        f"compiled for CPython 3.{minor} only: {n_files} members, bundled numpy.libs/*.so,"
        " console_scripts",
        size=size, n_files=n_files,
        shapes=("platlib", "extension", "exec_bits", "console_scripts", "large"),
    )


JOURNEY_WHEELS: tuple[PinnedWheel, ...] = (
    PinnedWheel(
        "black", "25.1.0", "black-25.1.0-py3-none-any.whl",
        "95e8176dae143ba9097f351d174fdaf0ccd29efb414b362ae3fd72bf0f710717",
        _files("09/71/54e999902aed72baf26bca0d50781b01838251a462612966e9fc4891eadd",
               "black-25.1.0-py3-none-any.whl"),
        "a popular pure tool: 53 members, 2 console_scripts (black, blackd)",
        size=207646, n_files=53, shapes=("console_scripts",),
    ),
    *(_numpy(minor) for minor in sorted(_NUMPY)),
    PinnedWheel(
        "uv", "0.9.5", "uv-0.9.5-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
        "6507bbbcd788553ec4ad5a96fa19364dc0f58b023e31d79868773559a83ec181",
        _files("9b/83/a0bdf4abf86ede79b427778fe27e2b4a022c98a7a8ea1745dcd6c6561f17",
               "uv-0.9.5-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"),
        "the uv installer: two ELF executables in .data/scripts (used to build environments)",
        size=21332544, n_files=11, shapes=("data_scripts_binary", "large"),
    ),
)
# fmt: on

BENCH_WHEELS: tuple[PinnedWheel, ...] = TEST_WHEELS + _BENCH_ONLY

_BY_NAME: dict[str, PinnedWheel] = {w.name: w for w in BENCH_WHEELS}

# The AWS CLI and what it needs (awscli 1.36.40 as `pip install awscli` resolved it on
# 2026-11-28 for CPython 3.11): a second benchmark corpus, 12 wheels and about 8,300
# files, most of them in two wheels. Kept apart from the tiers above (it pins another
# docutils); PyYAML is pinned once per CPython version, see awscli_wheels().
# fmt: off
AWSCLI_WHEELS: tuple[PinnedWheel, ...] = (
    PinnedWheel(
        "awscli", "1.36.40", "awscli-1.36.40-py3-none-any.whl",
        "971c3b150c06068bc26867fe295753547780f63fcf8256d41cd38760e44d46ca",
        _files("e5/a6/f8f35539c9b67109513ca67ea37bde39b9da2b8b6f884e3ae4019bf5ff68",
               "awscli-1.36.40-py3-none-any.whl"),
        "the AWS CLI: 6,008 members (examples, topics, customizations), bin scripts",
        size=4560483, n_files=6008,
    ),
    PinnedWheel(
        "botocore", "1.35.99", "botocore-1.35.99-py3-none-any.whl",
        "b22d27b6b617fc2d7342090d6129000af2efd20174215948c0d7ae2da0fab445",
        _files("fc/dd/d87e2a145fad9e08d0ec6edcf9d71f838ccc7acdd919acc4c0d4a93515f8",
               "botocore-1.35.99-py3-none-any.whl"),
        "1,842 members: service models as compressed JSON (data/), the AWS SDK core",
        size=13293216, n_files=1842,
    ),
    PinnedWheel(
        "colorama", "0.4.6", "colorama-0.4.6-py2.py3-none-any.whl",
        "4f1d9991f5acc0ca119f9d443620b77f9d6b33703e51011c16baf57afb285fc6",
        _files("d1/d6/3965ed04c63042e047cb6a3e6ed1a63a35087b6a609aa3a15ed8ac56c221",
               "colorama-0.4.6-py2.py3-none-any.whl"),
        "small pure dependency",
        size=25335, n_files=17,
    ),
    PinnedWheel(
        "docutils", "0.16", "docutils-0.16-py2.py3-none-any.whl",
        "0c5b78adfbf7762415433f5515cd5c9e762339e23369dbe8000d84a4bf4ab3af",
        _files("81/44/8a15e45ffa96e6cf82956dd8d7af9e666357e16b0d93b253903475ee947f",
               "docutils-0.16-py2.py3-none-any.whl"),
        "docutils 0.16, as awscli pins it (<0.17)",
        size=548181, n_files=203,
    ),
    PinnedWheel(
        "jmespath", "1.1.0", "jmespath-1.1.0-py3-none-any.whl",
        "a5663118de4908c91729bea0acadca56526eb2698e83de10cd116ae0f4e97c64",
        _files("14/2f/967ba146e6d58cf6a652da73885f52fc68001525b4197effc174321d70b4",
               "jmespath-1.1.0-py3-none-any.whl"),
        "small pure dependency",
        size=20419, n_files=14,
    ),
    PinnedWheel(
        "pyasn1", "0.6.5", "pyasn1-0.6.5-py3-none-any.whl",
        "4017b0fce125096b8573b39c989fdb1a4b19cf761e683398184550fea0e66587",
        _files("19/1f/3eefd5c84c35cae44549ce1c7f7e58f7945b34f5a6bce07a135438522073",
               "pyasn1-0.6.5-py3-none-any.whl"),
        "small pure dependency",
        size=84807, n_files=38,
    ),
    PinnedWheel(
        "python-dateutil", "2.9.0.post0", "python_dateutil-2.9.0.post0-py2.py3-none-any.whl",
        "a8b2bc7bffae282281c8140a97d3aa9c14da0b136dfe83f850eea9a5f7470427",
        _files("ec/57/56b9bcc3c9c6a792fcbaf139543cee77261f3651ca9da0c93f5c1221264b",
               "python_dateutil-2.9.0.post0-py2.py3-none-any.whl"),
        "small pure dependency",
        size=229892, n_files=25,
    ),
    PinnedWheel(
        "rsa", "4.7.2", "rsa-4.7.2-py3-none-any.whl",
        "78f9a9bf4e7be0c5ded4583326e7461e3a3c5aae24073648b4bdfa797d78c9d2",
        _files("e9/93/0c0f002031f18b53af7a6166103c02b9c0667be528944137cc954ec921b3",
               "rsa-4.7.2-py3-none-any.whl"),
        "small pure dependency, console_scripts",
        size=34505, n_files=21,
    ),
    PinnedWheel(
        "s3transfer", "0.10.4", "s3transfer-0.10.4-py3-none-any.whl",
        "244a76a24355363a68164241438de1b72f8781664920260c48465896b712a41e",
        _files("66/05/7957af15543b8c9799209506df4660cba7afc4cf94bfb60513827e96bed6",
               "s3transfer-0.10.4-py3-none-any.whl"),
        "small pure dependency",
        size=83175, n_files=22,
    ),
    PinnedWheel(
        "six", "1.17.0", "six-1.17.0-py2.py3-none-any.whl",
        "4721f391ed90541fddacab5acf947aa0d3dc7d27b2e1e8eda2be8970586c3274",
        _files("b7/ce/149a00dd41f10bc29e5921b496af8b574d8413afcd5e30dfa0ed46c2cc5e",
               "six-1.17.0-py2.py3-none-any.whl"),
        "one module",
        size=11050, n_files=6,
    ),
    PinnedWheel(
        "urllib3", "2.8.0", "urllib3-2.8.0-py3-none-any.whl",
        "0cf3cae568d36aa9576b28dfb35f11328f1cb974ca7647d9475ebb86c75ac6e3",
        _files("92/9d/c4e665119135114480843e7ab388fa94d8480650450e6f8e26b70d323a4c",
               "urllib3-2.8.0-py3-none-any.whl"),
        "small pure dependency",
        size=135717, n_files=42,
    ),
)

def _pyyaml(minor: int, sha256: str, path: str, size: int) -> PinnedWheel:
    tags = f"cp3{minor}-cp3{minor}-manylinux2014_x86_64.manylinux_2_17_x86_64.manylinux_2_28_x86_64"
    filename = f"pyyaml-6.0.4-{tags}.whl"
    return PinnedWheel(
        "pyyaml", "6.0.4", filename, sha256, _files(path, filename),
        f"PyYAML with its C extension, for CPython 3.{minor}", size=size, n_files=28,
    )


_PYYAML_AWSCLI: dict[int, PinnedWheel] = {
    10: _pyyaml(10, "88a089e6424a8a256321270620d5a4328ad5227fb2061b07d33f596894336914",
                "e8/d8/4e4b17fa9eafeaf6402e8f2ec46e76fd64930cf02be909a67310b222f217", 798866),
    11: _pyyaml(11, "622aa875fa6533f25fedcffe23079357d65a690d462200afed5d8e9d0e01ebee",
                "9d/3e/c1c307b6c03e4ea7d86f166f14920ead07aecc35e88d873814d12aa2da66", 828016),
    12: _pyyaml(12, "93bfb2459195406a518e2f487a9bbf01df240175f31e06f5a252ac6734c7bbf0",
                "94/80/1d27f7084b983b7cfd1fb35e65a38276d9eddfdcdabc0922bb26cf9521bc", 849249),
    13: _pyyaml(13, "50588147ab2c6a59b5f990a4905db80899a6c2bd197e046a6201f1e67587e794",
                "70/f2/f280d52f22f6d9853517d02495c02fbf4c80214fae8ca498efa8605013da", 838459),
}
# fmt: on


def awscli_wheels(version: tuple[int, int] | None = None) -> tuple[PinnedWheel, ...]:
    """The awscli corpus for CPython *version* (default: this one)."""
    minor = (version or sys.version_info[:2])[1]
    if minor not in _PYYAML_AWSCLI:
        raise KeyError(f"no pinned PyYAML wheel for CPython 3.{minor}")
    return (*AWSCLI_WHEELS, _PYYAML_AWSCLI[minor])



def by_name(name: str) -> PinnedWheel:
    """The pinned wheel of project *name* (any spelling PEP 503 normalizes alike)."""
    try:
        return _BY_NAME[normalize_name(name)]
    except KeyError:
        known = ", ".join(sorted(_BY_NAME))
        raise KeyError(f"no pinned wheel for {name!r}; known: {known}") from None


def for_this_python(name: str, version: tuple[int, int] | None = None) -> PinnedWheel:
    """The pinned wheel of *name* that installs on CPython *version* (default: this one).

    Looks in every tier; for a project pinned once per CPython version (numpy) it picks
    the file tagged ``cp3X``.
    """
    major, minor = version or sys.version_info[:2]
    key = normalize_name(name)
    found = [w for w in BENCH_WHEELS + JOURNEY_WHEELS if w.name == key]
    for w in found:
        py = w.tags[0]
        if not py.startswith("cp") or py == f"cp{major}{minor}":
            return w
    raise KeyError(f"no pinned wheel of {name!r} for CPython {major}.{minor}")


def wheel_cache_dir() -> Path:
    """``$SAFELINK_TEST_WHEELS`` if set (and non-empty), else ``<repo>/.wheels``."""
    env = os.environ.get(_ENV_CACHE_DIR)
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parent.parent / ".wheels"


# --------------------------------------------------------------------------- fetching


def fetch(
    wheels: Iterable[PinnedWheel],
    dest: Path | None = None,
    *,
    via: Via = "auto",
    rehash: bool = False,
) -> list[Path]:
    """Make sure each wheel is in *dest* (default :func:`wheel_cache_dir`); return paths.

    Only missing wheels are downloaded.  Every returned file has been checked against its
    pinned sha256: files already present are re-hashed unless a ``<file>.sha256-ok``
    marker records the same hash, size and mtime (pass ``rehash=True`` to hash anyway);
    a present file that fails the check is replaced by a fresh download.  Raises
    :class:`CorpusError` (one-line message) when a download fails or does not match.
    """
    return [path for path, _ in _fetch_iter(wheels, dest, via=via, rehash=rehash)]


def _fetch_iter(
    wheels: Iterable[PinnedWheel], dest: Path | None, *, via: Via, rehash: bool
) -> Iterator[tuple[Path, str]]:
    directory = wheel_cache_dir() if dest is None else Path(dest)
    directory.mkdir(parents=True, exist_ok=True)
    for wheel in wheels:
        yield _fetch_one(wheel, directory, via=via, rehash=rehash)


def _fetch_one(wheel: PinnedWheel, directory: Path, *, via: Via, rehash: bool) -> tuple[Path, str]:
    path = directory / wheel.filename
    marker = directory / (wheel.filename + _MARKER_SUFFIX)
    if path.is_file():
        if not rehash and _marker_ok(wheel, path, marker):
            return path, "cached"
        if _matches(wheel, path):
            _write_marker(wheel, path, marker)
            return path, "verified"
        # Corrupt or truncated: replace it.
        _unlink(marker)
        _unlink(path)
    else:
        _unlink(marker)
    _download(wheel, path, via=via)
    _write_marker(wheel, path, marker)
    return path, "downloaded"


def _stamp(wheel: PinnedWheel, path: Path) -> str:
    st = path.stat()
    return f"{wheel.sha256} {st.st_size} {st.st_mtime_ns}\n"


def _marker_ok(wheel: PinnedWheel, path: Path, marker: Path) -> bool:
    try:
        return marker.read_text(encoding="ascii") == _stamp(wheel, path)
    except (OSError, UnicodeDecodeError):
        return False


def _write_marker(wheel: PinnedWheel, path: Path, marker: Path) -> None:
    tmp = marker.with_name(f".{marker.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(_stamp(wheel, path), encoding="ascii")
        os.replace(tmp, marker)
    except OSError:
        _unlink(tmp)  # the marker is only an optimisation


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _matches(wheel: PinnedWheel, path: Path) -> bool:
    if wheel.size and path.stat().st_size != wheel.size:
        return False
    return _sha256_of(path) == wheel.sha256


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _download(wheel: PinnedWheel, path: Path, *, via: Via) -> None:
    errors: list[str] = []
    if via in ("auto", "urllib"):
        try:
            _download_urllib(wheel, path)
            return
        except _TransportError as exc:
            errors.append(f"urllib: {exc}")
    if via in ("auto", "pip"):
        try:
            _download_pip(wheel, path)
            return
        except _TransportError as exc:
            errors.append(f"pip: {exc}")
    raise CorpusError(_one_line(f"{wheel.filename}: download failed ({'; '.join(errors)})"))


class _TransportError(Exception):
    """Could not get the bytes at all (a content mismatch is a CorpusError instead)."""


def _ssl_context() -> ssl.SSLContext:
    cafile = os.environ.get("SSL_CERT_FILE") or os.environ.get("PIP_CERT")
    if cafile and Path(cafile).is_file():
        return ssl.create_default_context(cafile=cafile)
    return ssl.create_default_context()


def _download_urllib(wheel: PinnedWheel, path: Path) -> None:
    request = urllib.request.Request(
        wheel.url, headers={"User-Agent": "safelink-test-corpus (urllib)"}
    )
    last = ""
    # Retry only over the network (a file:// URL, as in the tests, fails for good).
    attempts = _ATTEMPTS if wheel.url.startswith(("http://", "https://")) else 1
    for attempt in range(attempts):
        if attempt:
            time.sleep(2.0 * attempt)
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{wheel.filename}.", suffix=".part", dir=path.parent
        )
        tmp = Path(tmp_name)
        try:
            digest = hashlib.sha256()
            with (
                os.fdopen(fd, "wb") as out,
                urllib.request.urlopen(
                    request, timeout=_TIMEOUT, context=_ssl_context()
                ) as response,
            ):
                while chunk := response.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
            _install_verified(wheel, tmp, path, digest.hexdigest(), source=wheel.url)
            return
        except urllib.error.HTTPError as exc:
            _unlink(tmp)
            if 400 <= exc.code < 500:
                raise _TransportError(f"HTTP {exc.code} for {wheel.url}") from exc
            last = f"HTTP {exc.code} for {wheel.url}"
        except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
            _unlink(tmp)
            last = f"{type(exc).__name__}: {exc} ({wheel.url})"
        except BaseException:
            _unlink(tmp)
            raise
    raise _TransportError(f"{last} after {attempts} attempt(s)")


def _pip_target_args(wheel: PinnedWheel) -> list[str]:
    """``pip download`` options that select the pinned file's tags as CPython 3.10 would.

    Every pin must install on CPython 3.10, and was chosen as the file pip picks for it,
    so asking for 3.10 (not the tag's minimum, which can fail a Requires-Python such as
    cryptography's ``!=3.9.0``) with exactly the file's ABI and platform tags gets it.
    """
    py, abi, plat = wheel.tags
    cpython = any(re.fullmatch(r"cp3\d+", t) for t in py.split("."))
    args = ["--implementation", "cp" if cpython else "py", "--python-version", "3.10"]
    for tag in abi.split("."):
        args += ["--abi", tag]
    for tag in plat.split("."):
        args += ["--platform", tag]
    return args


def _download_pip(wheel: PinnedWheel, path: Path) -> None:
    with tempfile.TemporaryDirectory(prefix=".pip-", dir=path.parent) as tmpdir:
        cmd = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
            "--disable-pip-version-check", "--no-input", "--quiet", "--dest", tmpdir,
            *_pip_target_args(wheel), f"{wheel.name}=={wheel.version}",
        ]  # fmt: skip
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise _TransportError(f"{type(exc).__name__}: {exc}") from exc
        if proc.returncode != 0:
            lines = [ln for ln in (proc.stderr + proc.stdout).splitlines() if ln.strip()]
            raise _TransportError(
                f"pip exited {proc.returncode}: {lines[-1] if lines else '(no output)'}"
            )
        got = Path(tmpdir) / wheel.filename
        if not got.is_file():
            others = sorted(p.name for p in Path(tmpdir).iterdir())
            raise CorpusError(
                f"{wheel.filename}: pip downloaded {others or 'nothing'} instead of the pin"
            )
        _install_verified(wheel, got, path, _sha256_of(got), source="pip download")


def _install_verified(wheel: PinnedWheel, tmp: Path, path: Path, sha: str, source: str) -> None:
    """Check *tmp* against the pin, then atomically rename it to *path*."""
    size = tmp.stat().st_size
    if sha != wheel.sha256 or (wheel.size and size != wheel.size):
        _unlink(tmp)
        raise CorpusError(
            f"{wheel.filename}: sha256 mismatch from {source}: expected {wheel.sha256}"
            f" ({wheel.size} bytes), got {sha} ({size} bytes)"
        )
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


# --------------------------------------------------------------------------- CLI


def _mb(n: int) -> str:
    return f"{n / 1e6:8.2f} MB"


def _tier(bench: bool) -> tuple[PinnedWheel, ...]:
    return BENCH_WHEELS if bench else TEST_WHEELS


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="corpus.py", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_list = sub.add_parser("list", help="show the pinned wheels of a tier")
    p_fetch = sub.add_parser("fetch", help="download (once) and verify a tier")
    for p in (p_list, p_fetch):
        p.add_argument("--bench", action="store_true", help="the benchmark tier (a superset)")
        p.add_argument("--dest", type=Path, default=None, help="default: wheel_cache_dir()")
    p_fetch.add_argument("--via", choices=["auto", "urllib", "pip"], default="auto")
    p_fetch.add_argument("--rehash", action="store_true", help="ignore .sha256-ok markers")
    args = parser.parse_args(argv)

    wheels = _tier(args.bench)
    dest: Path = args.dest if args.dest is not None else wheel_cache_dir()
    tier = "bench" if args.bench else "test"
    total_size = sum(w.size for w in wheels)
    total_files = sum(w.n_files for w in wheels)
    if args.command == "list":
        for w in wheels:
            state = "present" if w.local_path(dest).is_file() else "missing"
            print(
                f"{w.name:20} {w.version:8} {_mb(w.size)} {w.n_files:6} files  {state:7}  {w.why}"
            )
        print(
            f"{tier} tier: {len(wheels)} wheels, {total_files} files, {_mb(total_size)} in {dest}"
        )
        return 0
    try:
        for path, status in _fetch_iter(wheels, dest, via=args.via, rehash=args.rehash):
            print(f"{status:10} {_mb(path.stat().st_size)}  {path}", flush=True)
    except CorpusError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(
        f"{tier} tier: {len(wheels)} wheels, {total_files} files, {_mb(total_size)}"
        f" verified in {dest}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
