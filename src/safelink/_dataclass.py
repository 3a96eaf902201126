"""A light ``@dataclass`` for the modules every install imports.

The standard library's ``dataclasses`` imports ``inspect`` (and with it ``ast``,
``dis``, ``tokenize``) and compiles the source of ``__init__``, ``__repr__`` and
``__eq__`` for every class it decorates: on this code path that was about a fifth
of ``python -m safelink install``'s start-up (instructions counted with
cachegrind). This decorator takes the same declarations (annotations, defaults,
:func:`field` with ``default``, ``default_factory``, ``compare`` and ``repr``;
``frozen=True``) and builds the methods from closures, compiling nothing. Type
checkers see it as a dataclass (``dataclass_transform``).

What it does not do: ordering, ``__slots__``, ``kw_only``, ``__post_init__``,
``InitVar``, inheritance of fields, and ``dataclasses.fields``/``asdict`` (use
:func:`asdict` here). Classes decorated here are not ``dataclasses.is_dataclass``.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeVar

    from typing_extensions import dataclass_transform

    _T = TypeVar("_T")
else:

    def dataclass_transform(**_kw: object) -> object:
        return lambda f: f


_MISSING = object()


class FrozenInstanceError(AttributeError):
    """Assigning to a field of a frozen instance."""


class _Field:
    __slots__ = ("compare", "default", "default_factory", "repr")

    def __init__(
        self, default: object, default_factory: object, compare: bool, repr: bool
    ) -> None:
        self.default = default
        self.default_factory = default_factory
        self.compare = compare
        self.repr = repr


def field(
    *,
    default: Any = _MISSING,
    default_factory: Callable[[], Any] | None = None,
    compare: bool = True,
    repr: bool = True,
) -> Any:
    return _Field(
        default, _MISSING if default_factory is None else default_factory, compare, repr
    )


@dataclass_transform(field_specifiers=(field,))
def dataclass(cls: type[_T] | None = None, /, *, frozen: bool = False) -> Any:
    """Decorate *cls* like ``dataclasses.dataclass`` (``@dataclass`` or
    ``@dataclass(frozen=True)``)."""
    if cls is None:
        return lambda c: _build(c, frozen)
    return _build(cls, frozen)


def _build(cls: Any, frozen: bool) -> Any:
    names: list[str] = []
    defaults: dict[str, object] = {}
    factories: dict[str, Callable[[], object]] = {}
    compared: list[str] = []
    shown: list[str] = []
    # this class's own annotations (no inheritance), without importing inspect
    for name, kind in cls.__dict__.get("__annotations__", {}).items():  # noqa: RUF063
        if isinstance(kind, str) and kind.startswith("ClassVar"):
            continue
        names.append(name)
        value = cls.__dict__.get(name, _MISSING)
        compare = show = True
        if isinstance(value, _Field):
            compare, show = value.compare, value.repr
            if value.default_factory is not _MISSING:
                factories[name] = value.default_factory  # type: ignore[assignment]
            elif value.default is not _MISSING:
                defaults[name] = value.default
            if value.default is not _MISSING:
                setattr(cls, name, value.default)
            else:
                delattr(cls, name)
        elif value is not _MISSING:
            defaults[name] = value
        if compare:
            compared.append(name)
        if show:
            shown.append(name)
    fields = tuple(names)
    set_ = object.__setattr__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if len(args) > len(fields):
            raise TypeError(
                f"{cls.__name__}() takes {len(fields)} positional arguments but "
                f"{len(args)} were given"
            )
        for name, value in zip(fields, args, strict=False):
            if name in kwargs:
                raise TypeError(f"{cls.__name__}() got multiple values for argument {name!r}")
            set_(self, name, value)
        for name in fields[len(args) :]:
            if name in kwargs:
                set_(self, name, kwargs.pop(name))
            elif name in factories:
                set_(self, name, factories[name]())
            elif name in defaults:
                set_(self, name, defaults[name])
            else:
                raise TypeError(f"{cls.__name__}() missing required argument: {name!r}")
        if kwargs:
            raise TypeError(f"{cls.__name__}() got unexpected keyword argument(s) {sorted(kwargs)}")

    def __repr__(self: Any) -> str:
        inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in shown)
        return f"{type(self).__qualname__}({inner})"

    def __eq__(self: Any, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in compared)

    cls.__init__ = __init__
    cls.__repr__ = __repr__
    cls.__eq__ = __eq__
    cls.__safelink_fields__ = fields
    if frozen:

        def __setattr__(self: Any, name: str, value: object) -> None:
            raise FrozenInstanceError(f"cannot assign to field {name!r}")

        def __delattr__(self: Any, name: str) -> None:
            raise FrozenInstanceError(f"cannot delete field {name!r}")

        def __hash__(self: Any) -> int:
            return hash(tuple(getattr(self, n) for n in compared))

        cls.__setattr__ = __setattr__
        cls.__delattr__ = __delattr__
        cls.__hash__ = __hash__
    else:
        cls.__hash__ = None
    return cls


def asdict(obj: Any) -> Any:
    """Like ``dataclasses.asdict``: fields to a dict, recursively (lists, tuples, dicts)."""
    fields = getattr(type(obj), "__safelink_fields__", None)
    if fields is not None:
        return {n: asdict(getattr(obj, n)) for n in fields}
    if isinstance(obj, (list, tuple)):
        return type(obj)(asdict(v) for v in obj)
    if isinstance(obj, dict):
        return {k: asdict(v) for k, v in obj.items()}
    return obj
