"""Card details (CDS Hooks: GitHub-flavoured Markdown) as HTML that is safe to insert.

markdown-it in its ``commonmark`` preset with raw HTML off: a ``<script>`` in a detail
comes out as text, and its link validator refuses ``javascript:``/``data:`` URLs. Links
open in a new tab without the opener.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from markdown_it import MarkdownIt

__all__ = ["MAX_MARKDOWN_CHARS", "render_markdown"]

MAX_MARKDOWN_CHARS = 20_000
"""Longer details are cut (the card's own limit is far lower); rendering stays linear."""


@functools.cache
def _renderer() -> MarkdownIt:
    """Built on the first detail shown, not at start-up: importing markdown-it is ~20 ms
    of every start and most servers never render a page."""
    from markdown_it import MarkdownIt  # noqa: PLC0415

    renderer = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    return renderer.enable("table")


def render_markdown(text: str) -> str:
    html: str = _renderer().render(text[:MAX_MARKDOWN_CHARS])
    return html.replace("<a href=", '<a target="_blank" rel="noopener noreferrer" href=')
