"""Key labels: the one name a key has in every store."""

from __future__ import annotations

import re

from keys.errors import KeyStoreError

LABEL_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,127}")
"""Lower-case letters, digits, ``.``, ``_`` and ``-``; starts with a letter or digit; at most
128 characters. The file store turns a label into a file name, so a label may not hold a path
separator or start with a dot."""


def check_label(label: str) -> str:
    """Return ``label`` unchanged, or raise ``KeyStoreError`` if it is not a valid key label."""
    if not isinstance(label, str) or LABEL_PATTERN.fullmatch(label) is None:
        raise KeyStoreError(
            f"Invalid key label {label!r}: use 1 to 128 characters from a-z, 0-9, '.', '_' "
            "and '-', starting with a letter or a digit.",
            code="key-label",
        )
    return label
