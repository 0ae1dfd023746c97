"""The kinds of registered body: a department or an enterprise."""

from __future__ import annotations

from enum import StrEnum


class BodyKind(StrEnum):
    """What a registered body is: a government department, or an enterprise that seals its own
    contracts and applications with the seals the service holds for it."""

    DEPARTMENT = "department"
    ENTERPRISE = "enterprise"
