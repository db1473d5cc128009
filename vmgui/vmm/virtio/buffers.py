"""Byte-offset slicing over a chain's list of memoryviews, without copying guest data.

Drivers may frame a request any way they like (virtio 1.x §2.6.4: the device must not assume
that a header sits in its own descriptor), so devices cut headers and trailers out of the
buffer list by byte count.
"""

from __future__ import annotations


def split(views: list[memoryview], n: int) -> tuple[list[memoryview], list[memoryview]]:
    """The first `n` bytes of `views` and the rest; the first part is shorter if views are."""
    head: list[memoryview] = []
    rest: list[memoryview] = []
    for v in views:
        if n <= 0:
            rest.append(v)
        elif len(v) <= n:
            head.append(v)
            n -= len(v)
        else:
            head.append(v[:n])
            rest.append(v[n:])
            n = 0
    return head, rest


def split_tail(views: list[memoryview], n: int) -> tuple[list[memoryview], list[memoryview]]:
    """All but the last `n` bytes of `views`, and those last `n` bytes."""
    total = sum(len(v) for v in views)
    return split(views, max(0, total - n))


def gather(views: list[memoryview]) -> bytes:
    return b"".join(bytes(v) for v in views)


def scatter(views: list[memoryview], data: bytes) -> int:
    """Copy `data` into the views in order; returns bytes written."""
    done = 0
    for v in views:
        if done >= len(data):
            break
        n = min(len(v), len(data) - done)
        v[:n] = data[done : done + n]
        done += n
    return done


def total(views: list[memoryview]) -> int:
    return sum(len(v) for v in views)
