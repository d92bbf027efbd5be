"""The built-in structure checks every pipeline gets."""

from __future__ import annotations

from relayguard.checks.api import Check
from relayguard.checks.headers import HeaderCheck
from relayguard.checks.mime import MimeCheck
from relayguard.checks.received import ReceivedCheck


def builtin_checks() -> list[Check]:
    return [HeaderCheck(), ReceivedCheck(), MimeCheck()]
