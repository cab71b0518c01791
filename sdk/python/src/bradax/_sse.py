"""An incremental Server-Sent Events decoder (the WHATWG event-stream rules).

Bytes are fed as they arrive (chunk boundaries anywhere, even inside a UTF-8 character or
between ``\\r`` and ``\\n``); each complete event's ``data`` is yielded at once, so a caller
sees a token as soon as its event's blank line arrives.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass
from typing import Iterable, Iterator, Optional


@dataclass(frozen=True)
class SSEEvent:
    data: str
    event: Optional[str] = None
    id: Optional[str] = None


class SSEDecoder:
    def __init__(self) -> None:
        self._text = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buf = ""
        self._pending_cr = False
        self._data: list[str] = []
        self._event: Optional[str] = None
        self._id: Optional[str] = None
        self._first = True

    def feed(self, chunk: bytes) -> Iterator[SSEEvent]:
        """Decode ``chunk`` and yield every event it completes."""
        text = self._text.decode(chunk)
        if self._first and text:
            self._first = False
            if text.startswith("\ufeff"):
                text = text[1:]
        if self._pending_cr and text.startswith("\n"):
            text = text[1:]  # the \n of a \r\n split across chunks
        self._pending_cr = False
        self._buf += text
        while True:
            cut = _line_end(self._buf)
            if cut is None:
                break
            end, width = cut
            line = self._buf[:end]
            if width == 1 and self._buf[end] == "\r" and end + 1 == len(self._buf):
                self._pending_cr = True  # maybe the first half of \r\n
            self._buf = self._buf[end + width :]
            ev = self._line(line)
            if ev is not None:
                yield ev

    def close(self) -> Iterator[SSEEvent]:
        """End of stream: an event without its final blank line is still delivered (servers
        that close right after the last ``data:`` line)."""
        tail = self._text.decode(b"", final=True)
        self._buf += tail
        if self._buf:
            ev = self._line(self._buf)
            self._buf = ""
            if ev is not None:
                yield ev
        ev = self._line("")
        if ev is not None:
            yield ev

    def _line(self, line: str) -> Optional[SSEEvent]:
        if line == "":
            if not self._data:
                self._event = None
                return None
            ev = SSEEvent("\n".join(self._data), self._event, self._id)
            self._data = []
            self._event = None
            return ev
        if line.startswith(":"):
            return None  # comment / keep-alive
        field, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._event = value
        elif field == "id" and "\0" not in value:
            self._id = value
        return None


def _line_end(buf: str) -> Optional[tuple[int, int]]:
    """Where the first line ends in ``buf`` and how wide its terminator is."""
    r = buf.find("\r")
    n = buf.find("\n")
    if r == -1 and n == -1:
        return None
    if r != -1 and (n == -1 or r < n):
        return (r, 2) if n == r + 1 else (r, 1)
    return (n, 1)


def iter_events(chunks: Iterable[bytes]) -> Iterator[SSEEvent]:
    """Every event of a byte stream, each as soon as it is complete."""
    dec = SSEDecoder()
    for chunk in chunks:
        yield from dec.feed(chunk)
    yield from dec.close()
