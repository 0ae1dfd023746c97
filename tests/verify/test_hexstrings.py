"""The fast hex-string reader gives what pyHanko's reader gives, and only where asked."""

from __future__ import annotations

import io
import threading
from collections.abc import Callable

import pytest
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.misc import PdfStreamError

from verify import hexstrings
from verify.hexstrings import fast_hex_strings, read_hex_string

CASES = [
    b"<>",
    b"<00>",
    b"<48656c6c6f>",
    b"<48656C6C6F>",
    b"<4 8 6\n5\r6c\t6c\x0c6f\x00>",
    b"<486>",  # odd: a trailing 0 is implied
    b"<FEFF00480069>",  # UTF-16 text string
    b"<" + b"30" * 70_000 + b">",  # longer than one read chunk
    b"<" + b"ab" * 32_767 + b"\n" * 3 + b"cd>",  # the '>' in the second chunk
    b"<" + b"a" * 65_535 + b">",  # the '>' the last byte of the first chunk
    b"<" + b"a" * 65_536 + b">",  # the '>' the first byte of the second chunk
]


def _library(data: bytes) -> tuple[object, int]:
    stream = io.BytesIO(data + b" /Next")
    value = LIBRARY_READER(stream)
    return value, stream.tell()


# pyHanko's own reader, whether or not the fast one was installed yet.
LIBRARY_READER: Callable[[io.BytesIO], object] = hexstrings._library_reader


@pytest.mark.parametrize("data", CASES, ids=range(len(CASES)))
def test_same_value_and_position_as_pyhanko(data: bytes) -> None:
    expected, expected_pos = _library(data)
    stream = io.BytesIO(data + b" /Next")
    got = read_hex_string(stream)
    assert type(got) is type(expected)
    assert got == expected
    assert stream.tell() == expected_pos == len(data)


@pytest.mark.parametrize("data", [b"<48 6x>", b"<4865)>", b"<48<65>"])
def test_stray_character_is_an_error(data: bytes) -> None:
    with pytest.raises(PdfStreamError, match="Unexpected token"):
        read_hex_string(io.BytesIO(data))
    with pytest.raises(PdfStreamError):
        LIBRARY_READER(io.BytesIO(data))


def test_unterminated_string_is_an_error() -> None:
    with pytest.raises(PdfStreamError, match="ended prematurely"):
        read_hex_string(io.BytesIO(b"<48656c" + b"6c" * 100_000))


def test_comment_inside_goes_to_the_library() -> None:
    data = b"<4865 % a comment > with a bracket\n6c6c6f>"
    expected, _ = _library(data)
    assert expected == "Hello"
    assert read_hex_string(io.BytesIO(data)) == expected


def test_fast_path_only_inside_the_block() -> None:
    data = b"<" + b"41" * 10 + b">"
    calls: list[int] = []
    original = read_hex_string

    def counting(stream):  # type: ignore[no-untyped-def]
        calls.append(1)
        return original(stream)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(hexstrings, "read_hex_string", counting)
        with fast_hex_strings():
            inside = generic.read_object(io.BytesIO(data), None)  # type: ignore[arg-type]
        assert calls == [1]
        outside = generic.read_object(io.BytesIO(data), None)  # type: ignore[arg-type]
        assert calls == [1]
    assert str(inside) == str(outside) == "A" * 10


def test_another_thread_outside_the_block_keeps_the_library_reader() -> None:
    data = b"<" + b"42" * 10 + b">"
    inside = threading.Event()
    done = threading.Event()
    seen: list[bool] = []

    def outside() -> None:
        inside.wait(10)
        seen.append(hexstrings._active.get())
        generic.read_object(io.BytesIO(data), None)  # type: ignore[arg-type]
        done.set()

    worker = threading.Thread(target=outside)
    worker.start()
    with fast_hex_strings():
        inside.set()
        assert done.wait(10)
    worker.join()
    assert seen == [False]
