"""The report page as a tree of tags, for tests that check its structure rather than its strings."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser

VOID = {"img", "br", "meta", "hr", "input", "link"}


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list[Node | str] = field(default_factory=list)

    def text(self) -> str:
        """The text a reader sees, whitespace collapsed; a <br> reads as a space."""
        if self.tag == "br":
            return " "
        return " ".join("".join(c.text() if isinstance(c, Node) else c for c in self.children).split())

    def all(self, tag: str, cls: str | None = None) -> list[Node]:
        found = []
        for child in self.children:
            if isinstance(child, Node):
                if child.tag == tag and (cls is None or cls in child.attrs.get("class", "").split()):
                    found.append(child)
                found += child.all(tag, cls)
        return found


class Tree(HTMLParser):
    """The page as nested Nodes; fails on a closing tag that does not match (malformed HTML)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.stack = [Node("root", {})]
        self.feed(text)
        assert [n.tag for n in self.stack] == ["root"], "unclosed tags"

    def handle_starttag(self, tag, attrs):
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_endtag(self, tag):
        assert self.stack[-1].tag == tag, f"</{tag}> closes <{self.stack[-1].tag}>"
        self.stack.pop()

    def handle_data(self, data):
        self.stack[-1].children.append(data)


def rows(table: Node) -> list[list[Node]]:
    return [[c for c in tr.children if isinstance(c, Node) and c.tag in ("th", "td")] for tr in table.all("tr")]


def parse(text: str) -> Node:
    return Tree(text).stack[0]
