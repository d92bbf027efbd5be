"""Reduce HTML to visible text and collect the links it carries (href, src, form actions)."""

from __future__ import annotations

from html.parser import HTMLParser

_SKIP = {"script", "style", "head", "title", "noscript", "template"}
_BLOCK = {"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "td", "blockquote"}
_LINK_ATTRS = {
    ("a", "href"): "html:href",
    ("area", "href"): "html:href",
    ("img", "src"): "html:src",
    ("iframe", "src"): "html:src",
    ("frame", "src"): "html:src",
    ("form", "action"): "html:form",
    ("link", "href"): "html:href",
    ("input", "src"): "html:src",
    ("embed", "src"): "html:src",
}


class _Extractor(HTMLParser):
    def __init__(self, max_chars: int) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.size = 0
        self.max_chars = max_chars
        self.skip_depth = 0
        self.links: list[tuple[str, str]] = []
        self.images = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self.skip_depth += 1
        if tag in _BLOCK:
            self._add("\n")
        if tag == "img":
            self.images += 1
        for name, value in attrs:
            if value and (tag, name) in _LINK_ATTRS and len(self.links) < 10_000:
                self.links.append((value.strip(), _LINK_ATTRS[(tag, name)]))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # <br/> and <img/> must not open a skip region.
        if tag in _SKIP:
            return
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP and self.skip_depth:
            self.skip_depth -= 1
        if tag in _BLOCK:
            self._add("\n")

    def handle_data(self, data: str) -> None:
        if not self.skip_depth:
            self._add(data)

    def _add(self, s: str) -> None:
        if self.size < self.max_chars:
            self.parts.append(s)
            self.size += len(s)


def html_to_text(html: str, max_chars: int = 2_000_000) -> tuple[str, list[tuple[str, str]], int]:
    """(visible text, [(link, source)], image count). Never raises on malformed markup."""
    p = _Extractor(max_chars)
    try:
        p.feed(html)
        p.close()
    except Exception:  # HTMLParser is lenient, but hostile markup must never cost the message
        pass
    text = "".join(p.parts)
    # Collapse runs of whitespace per line; keep line structure for readability and n-grams.
    lines = (" ".join(line.split()) for line in text.splitlines())
    return "\n".join(line for line in lines if line), p.links, p.images
