"""vmgui.vmm.record behaves like the @dataclass features the VMM uses (it replaces them at run
time to keep start-up fast), checked side by side against the real dataclasses."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from tests.vmm.vmm_process import REPO
from vmgui.vmm import record as rec


def make_pair(frozen: bool) -> tuple[Any, Any]:
    def body() -> dict[str, object]:
        return {
            "__annotations__": {"a": "int", "b": "int", "items": "list[int]"},
            "b": 7,
            "items": None,  # replaced per implementation below
        }

    ours_ns = body() | {"items": rec.field(default_factory=list)}
    real_ns = body() | {"items": dataclasses.field(default_factory=list)}
    ours: Any = rec.record(frozen=frozen)(type("Point", (), ours_ns))
    real: Any = dataclasses.dataclass(frozen=frozen)(type("Point", (), real_ns))
    return ours, real


@pytest.mark.parametrize("frozen", [False, True])
def test_construction_eq_repr_match_dataclass(frozen: bool) -> None:
    ours, real = make_pair(frozen)
    cases: list[tuple[tuple[int, ...], dict[str, Any]]] = [
        ((1,), {}), ((1, 2), {}), ((), {"a": 3, "b": 4}), ((5,), {"items": [1]}),
    ]  # fmt: skip
    for args, kwargs in cases:
        o, r = ours(*args, **kwargs), real(*args, **kwargs)
        assert repr(o) == repr(r)
        assert (o.a, o.b, o.items) == (r.a, r.b, r.items)
        assert o == ours(*args, **kwargs)
        assert o != ours(99)
        assert o != r  # different classes never compare equal, as with dataclasses
    assert ours(1).items is not ours(1).items  # a fresh default per instance


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [((), {}), ((1, 2, [], 4), {}), ((1,), {"a": 2}), ((1,), {"nope": 2})],
)
def test_bad_arguments_raise_type_error_like_dataclass(args: tuple, kwargs: dict) -> None:
    ours, real = make_pair(False)
    with pytest.raises(TypeError):
        real(*args, **kwargs)
    with pytest.raises(TypeError):
        ours(*args, **kwargs)


def test_frozen_records_are_immutable_and_hash_by_value() -> None:
    ours, _ = make_pair(True)
    p = ours(1, 2)
    with pytest.raises(AttributeError):
        p.a = 5
    with pytest.raises(AttributeError):
        del p.a
    p2 = ours(1, 2)
    p2.items.append(0)
    with pytest.raises(TypeError):  # a list field makes the tuple unhashable, as in dataclasses
        hash(p2)
    cls: Any = rec.record(frozen=True)(
        type("Pair", (), {"__annotations__": {"x": "int", "y": "int"}})
    )
    assert hash(cls(1, 2)) == hash(cls(1, 2))
    assert len({cls(1, 2), cls(1, 2), cls(2, 1)}) == 2


def test_mutable_records_are_unhashable_and_assignable() -> None:
    ours, _ = make_pair(False)
    p = ours(1)
    p.a = 5
    assert p.a == 5
    with pytest.raises(TypeError):
        hash(p)


def test_vmm_start_path_does_not_import_dataclasses_or_typing() -> None:
    """The point of record.py: a `vmgui-vmm run` with no virtio devices imports neither."""
    import subprocess
    import sys

    code = (
        "import sys, vmgui.vmm.machine, vmgui.vmm.vm_setup; "
        "print(sorted({'dataclasses', 'typing', 'inspect', 'shutil'} & set(sys.modules)))"
    )
    # -S: site (e.g. setuptools' editable-install finder) is not ours to measure
    out = subprocess.run(
        [sys.executable, "-S", "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert out.stdout.strip() == "[]"
