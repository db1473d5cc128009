"""`vmgui vnc-screenshot` address forms."""

from __future__ import annotations

import pytest

from vmgui.console.rfb.snapshot import parse_address


@pytest.mark.parametrize(
    "text,where",
    [
        ("unix:/run/vnc.sock", ("/run/vnc.sock", "", 0)),
        ("example.org:1", ("", "example.org", 5901)),
        ("example.org::5999", ("", "example.org", 5999)),
        ("example.org", ("", "example.org", 5900)),
        (":2", ("", "127.0.0.1", 5902)),
        ("[::1]:0", ("", "::1", 5900)),
        ("[fe80::1]::6000", ("", "fe80::1", 6000)),
    ],
)
def test_address_forms(text: str, where: tuple[str, str, int]) -> None:
    ep = parse_address(text)
    assert (ep.path, ep.host, ep.port) == where


@pytest.mark.parametrize("text", ["unix:", "host:x", "host::70000", "a:b:c", ""])
def test_bad_addresses_are_one_sentence(text: str) -> None:
    with pytest.raises(ValueError) as exc:
        parse_address(text)
    assert str(exc.value).endswith(".")
