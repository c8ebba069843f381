"""The response values of ``mint.http`` are built the same with the C constructor or
without it (``scripts/test`` runs this file under ``MINT_NO_SPEEDUPS=1`` too)."""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

import pytest

import mint.http._types as types_mod
from mint._speedup import load_speedup
from mint.errors import TransportError
from mint.http import Data, Done, Error, Headers, Ref, Status
from mint.http._types import Pong, new_data

REF = Ref()
CASES: list[tuple[Any, tuple[object, ...]]] = [
    (Status, (REF, 101)),
    (Headers, (REF, [("upgrade", "websocket")])),
    (Data, (REF, b"\x00\xff")),
    (Done, (REF,)),
    (Error, (REF, TransportError("closed"))),
    (Pong, (REF,)),
]


@pytest.mark.parametrize(("cls", "args"), CASES)
def test_responses_build_alike_by_position_and_keyword(cls: Any, args: tuple[object, ...]) -> None:
    names = [f.name for f in dataclasses.fields(cls)]
    by_position = cls(*args)
    by_keyword = cls(**dict(zip(names, args, strict=True)))
    assert type(by_position) is cls
    assert by_position == by_keyword and hash(by_position.ref) == hash(REF)
    assert [getattr(by_position, n) for n in names] == list(args)
    with pytest.raises(dataclasses.FrozenInstanceError):
        by_position.ref = Ref()


@pytest.mark.parametrize(("cls", "args"), CASES)
def test_response_construction_errors_are_the_init_s(cls: Any, args: tuple[object, ...]) -> None:
    with pytest.raises(TypeError, match=r"__init__\(\) missing"):
        cls(*args[:-1])
    with pytest.raises(TypeError, match=r"__init__\(\) takes"):
        cls(*args, None)
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'nope'"):
        cls(*args, nope=1)


def test_new_data_is_data() -> None:
    """The read path's ``new_data`` builds the same value as ``Data(ref, data)``: the
    class itself when the C module is there (no Python frame), else a slot setter."""
    built = new_data(REF, b"abc")
    assert type(built) is Data and built == Data(REF, b"abc") and built.data == b"abc"
    entered: list[str] = []

    def profile(frame: Any, event: str, arg: object) -> None:
        if event == "call":
            entered.append(frame.f_code.co_name)

    sys.setprofile(profile)
    try:
        Data(REF, b"x")
        new_data(REF, b"y")
    finally:
        sys.setprofile(None)
    if load_speedup() is None:
        assert new_data is types_mod._new_data
        assert entered == ["__init__", "_new_data"]
    else:
        assert new_data is Data
        assert entered == []
