"""``json.dumps`` and ``json.loads`` for the small documents an install writes and
reads, without importing the ``json`` package (which imports ``re``: start-up cost).

Both call the interpreter's C accelerator ``_json`` the way ``json`` itself does for
its default settings, so the text is byte for byte what ``json.dumps`` writes and the
values are what ``json.loads`` returns (``tests/test_startup.py`` compares them).
Where ``_json`` is missing or differs, ``json`` is used. A malformed document raises
a ValueError, as with ``json``, and so does one nested too deeply to read (``json``
raises RecursionError): every reader of untrusted JSON (a journal, a cache record, a
file in an environment) catches one exception and says one line.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing is not imported at run time (start-up cost)
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

_encoders: dict[bool, Callable[[object], str]] = {}
_scan: list[Callable[[str, int], tuple[Any, int]]] = []


def _not_serializable(o: object) -> object:
    raise TypeError(f"Object of type {o.__class__.__name__} is not JSON serializable")


def dumps(obj: object, *, sort_keys: bool = False) -> str:
    """``json.dumps(obj, sort_keys=sort_keys)``."""
    encode = _encoders.get(sort_keys)
    if encode is None:
        encode = _encoders[sort_keys] = _encoder(sort_keys)
    return encode(obj)


def _encoder(sort_keys: bool) -> Callable[[object], str]:
    try:
        from _json import encode_basestring_ascii, make_encoder

        def encode(obj: object) -> str:
            make = make_encoder(
                {}, _not_serializable, encode_basestring_ascii, None, ": ", ", ",
                sort_keys, False, True,
            )  # fmt: skip
            return "".join(make(obj, 0))

        encode({"a": [1, 2.5, None, True, "\u00e9"]})  # the signature json uses
    except (ImportError, TypeError):  # pragma: no cover - another implementation
        import json

        def encode(obj: object) -> str:
            return json.dumps(obj, sort_keys=sort_keys)

    return encode


def loads(text: str | bytes) -> Any:
    """``json.loads(text)``; bytes must be UTF-8 (else ValueError)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    if not _scan:
        _scan.append(_scanner())
    ws = " \t\n\r"
    start = len(text) - len(text.lstrip(ws))
    try:
        obj, end = _scan[0](text, start)
    except StopIteration as exc:
        raise ValueError(f"Expecting value: char {exc.value}") from None
    except RecursionError:
        raise ValueError("nested too deeply") from None
    if len(text.rstrip(ws)) != end:
        raise ValueError(f"Extra data: char {end}")
    return obj


def _scanner() -> Callable[[str, int], tuple[Any, int]]:
    try:
        from _json import make_scanner

        class _Context:  # what json.JSONDecoder() offers the scanner
            strict = True
            object_hook = None
            object_pairs_hook = None
            parse_float = float
            parse_int = int
            parse_constant = {
                "-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")
            }.__getitem__  # fmt: skip
            memo: dict[str, str] = {}

        scan: Callable[[str, int], tuple[Any, int]] = make_scanner(_Context())  # type: ignore[arg-type]
        scan('{"a": [1, 2.5, null, true, "\\u00e9"]}', 0)
    except (ImportError, TypeError, AttributeError):  # pragma: no cover
        import json

        decoder = json.JSONDecoder()

        def scan(text: str, idx: int) -> tuple[Any, int]:
            try:
                return decoder.raw_decode(text, idx)
            except json.JSONDecodeError as exc:
                raise StopIteration(exc.pos) from None

    return scan
