"""`@record` and `field`: the part of `@dataclass` the VMM uses, without its start-up cost.

Why: `import dataclasses` pulls in inspect (ast, dis, tokenize) and every `@dataclass` compiles
its methods with exec(); on this 2-core host that was ~20 ms of a ~40 ms budget from process
start to the guest's first serial byte (QEMU's figure). Here the methods are closures, built in
microseconds. Type checkers see the real `dataclasses.dataclass`, so signatures, defaults and
`frozen` are checked as before; runtime behaviour matches for what the VMM uses: positional or
keyword construction, defaults, `field(default_factory=...)`, `__eq__`, `__repr__`, `frozen=True`
(assignment raises, instances hash by value) and mutable records being unhashable.
"""

from __future__ import annotations

#: typing.TYPE_CHECKING without importing typing (~4 ms here); mypy treats the name as True.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from dataclasses import FrozenInstanceError, field
    from dataclasses import dataclass as record
else:

    class FrozenInstanceError(AttributeError):
        """Assignment to a field of a frozen record (dataclasses' exception of the same name)."""

    class _Factory:
        __slots__ = ("make",)

        def __init__(self, make):
            self.make = make

    def field(*, default_factory):
        return _Factory(default_factory)

    def record(cls=None, /, *, frozen=False):
        if cls is None:
            return lambda c: _make_record(c, frozen)
        return _make_record(cls, frozen)

    def _make_record(cls, frozen):
        names = tuple(
            n for n in cls.__dict__.get("__annotations__", {}) if not n.startswith("__")
        )
        _MISSING = object()
        defaults = {}
        for n in names:
            value = cls.__dict__.get(n, _MISSING)
            if value is not _MISSING:
                defaults[n] = value
                if isinstance(value, _Factory):
                    delattr(cls, n)  # a shared class attribute would hide a missing value
        qualname = cls.__qualname__
        setter = object.__setattr__

        def __init__(self, *args, **kwargs):
            if len(args) > len(names):
                raise TypeError(f"{qualname}() takes {len(names)} positional arguments")
            for name, value in zip(names, args, strict=False):
                if name in kwargs:
                    raise TypeError(f"{qualname}() got multiple values for argument {name!r}")
                setter(self, name, value)
            for name in names[len(args) :]:
                if name in kwargs:
                    value = kwargs.pop(name)
                else:
                    value = defaults.get(name, _MISSING)
                    if value is _MISSING:
                        raise TypeError(f"{qualname}() missing required argument {name!r}")
                    if isinstance(value, _Factory):
                        value = value.make()
                setter(self, name, value)
            if kwargs:
                raise TypeError(f"{qualname}() got unexpected keyword arguments {sorted(kwargs)}")

        def _values(self):
            return tuple(getattr(self, n) for n in names)

        def __eq__(self, other):
            if other.__class__ is self.__class__:
                return _values(self) == _values(other)
            return NotImplemented

        def __repr__(self):
            inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in names)
            return f"{qualname}({inner})"

        for name, method in (("__init__", __init__), ("__eq__", __eq__), ("__repr__", __repr__)):
            if name not in cls.__dict__:  # like dataclass: a method the class defines wins
                setattr(cls, name, method)
        if frozen:

            def __setattr__(self, name, value):
                raise FrozenInstanceError(f"cannot assign to field {name!r}")

            def __delattr__(self, name):
                raise FrozenInstanceError(f"cannot delete field {name!r}")

            cls.__setattr__ = __setattr__
            cls.__delattr__ = __delattr__
            cls.__hash__ = lambda self: hash(_values(self))
        else:
            cls.__hash__ = None
        return cls


__all__ = ["TYPE_CHECKING", "FrozenInstanceError", "field", "record"]
