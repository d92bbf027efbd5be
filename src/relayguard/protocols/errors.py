"""Errors shared by the protocol cores (h11's split: whose fault it was)."""

from __future__ import annotations

from typing import Final


class ProtocolError(Exception):
    """Base class. The message is safe to log; front ends never send it to the peer."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something the protocol does not allow (or too much of it): close the connection."""


class LocalProtocolError(ProtocolError):
    """Our own code asked the core for something the protocol does not allow (a bug on our side)."""


class _NeedData:
    """Sentinel returned by `next_event()` when more bytes are needed."""

    _instance: _NeedData | None = None

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA: Final = _NeedData()
