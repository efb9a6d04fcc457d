"""Text from the site made safe to print on a terminal.

Titles, slugs and meta keys come from anyone who can edit a post: this module
owns the one rule for showing them (``wpcdc tail``, the ``wpcdc verify``
report): every control character, line breaks and terminal escapes included,
becomes a space. Pure: no I/O.
"""

from __future__ import annotations

import re
from typing import Final

_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` with each C0/C1 control character (and DEL) replaced by a space."""
    return _CONTROL.sub(" ", text)
