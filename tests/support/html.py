"""Reading teledrop's HTML in tests: :class:`Page` parses a page into its tags, labels,
text and containers, and a filename every page must escape."""

from __future__ import annotations

from html.parser import HTMLParser

#: A filename that runs script wherever a page forgets to escape it.
HOSTILE_NAME = "<img src=x onerror=alert(1)>&'.txt"
CONTROLS = {"input", "select", "textarea"}
URL_ATTRIBUTES = {"href", "src", "action", "formaction", "poster", "data"}
CONTAINERS = {"form", "section", "dialog", "fieldset", "select"}


class Page(HTMLParser):
    """The tags of a page with their attributes, the text of each label, the text, and for
    each tag the ids of the containers (form, section, dialog, select...) around it."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.within: list[frozenset[str]] = []
        self.labels: dict[str, str] = {}
        self.text: list[str] = []
        self._label: str | None = None
        self._open: list[tuple[str, str]] = []
        self.feed(html)
        self.close()
        assert not self._open, f"unclosed: {self._open}"

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        self.within.append(frozenset(element_id for _, element_id in self._open))
        if tag in CONTAINERS:
            self._open.append((tag, attributes.get("id") or ""))
        if tag == "label":
            self._label = attributes.get("for") or ""
            self.labels.setdefault(self._label, "")

    def handle_endtag(self, tag: str) -> None:
        if tag in CONTAINERS:
            assert self._open and self._open[-1][0] == tag, f"</{tag}> closes {self._open}"
            self._open.pop()
        if tag == "label":
            self._label = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._label is not None:
            self.labels[self._label] += data

    def all(self, tag: str, within: str | None = None) -> list[dict[str, str | None]]:
        """Every ``tag``; with ``within``, only those inside the element of that id."""
        return [attrs for (name, attrs), around in zip(self.tags, self.within)
                if name == tag and (within is None or within in around)]

    def options(self, select_id: str) -> list[dict[str, str | None]]:
        return self.all("option", within=select_id)

    def by_id(self, element_id: str) -> tuple[str, dict[str, str | None]] | None:
        return next(((t, a) for t, a in self.tags if a.get("id") == element_id), None)

    def controls(self, within: str | None = None) -> list[tuple[str, dict[str, str | None]]]:
        return [(t, a) for (t, a), around in zip(self.tags, self.within)
                if t in CONTROLS and a.get("type") not in ("hidden", "submit")
                and (within is None or within in around)]

    def urls(self) -> list[str]:
        return [value for _, attrs in self.tags for name, value in attrs.items()
                if name in URL_ATTRIBUTES and value is not None]

    def all_text(self) -> str:
        return "".join(self.text)
