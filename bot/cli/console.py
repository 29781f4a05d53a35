"""The CLI's rich console: markup off, so text from the platform is printed as text.

Error messages carry what a platform sent (a 422's body, an observation's fields); with rich markup on,
"[/]" in one crashed `plantbot once` and `status`, and "[link=...]" became a clickable link. Colour comes
from styles instead, and control characters (ANSI escapes, terminal hyperlinks) are shown as "?".
"""

from __future__ import annotations

import re
from typing import Any

from rich.console import Console
from rich.text import Text

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def make_console(**kwargs: Any) -> Console:
    """A console that never interprets markup, emoji codes or highlighting in what it prints."""
    return Console(markup=False, emoji=False, highlight=False, **kwargs)


def plain(value: object) -> str:
    """External text made safe for a terminal: control characters replaced with "?"."""
    return _CONTROL.sub("?", str(value))


def labelled(label: str, style: str, value: object) -> Text:
    """"label: value" with the label styled and the value as plain text."""
    return Text.assemble((f"{label}:", style), " ", plain(value))
