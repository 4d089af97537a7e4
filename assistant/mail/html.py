"""HTML → text in one pass, linear in the input whatever its nesting (html.parser and bs4 are not, on
hostile input). Scripts, styles and comments go; text hidden with CSS or the `hidden` attribute is kept,
each line of it starting with "[hidden text] ", so the injection guard (and a reader) can see it.

    from assistant.mail.html import html_to_text
"""

from __future__ import annotations

import html as htmllib
import re

MAX_HTML_CHARS = 2_000_000  # of markup read by html_to_text (its worst case is about 1 s a MB on a busy core)

# HTML → text, linear in the input whatever its nesting (html.parser and bs4 are not, on hostile input)

_RAW_TEXT = {"script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes"}
_DROPPED = {"script", "style", "title", "template", "noscript", "iframe", "noembed", "noframes"}
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr"}
_PARAGRAPH = {"p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "table", "ul", "ol", "hr", "dl"}
_BLOCK = _PARAGRAPH | {"div", "li", "tr", "td", "th", "dt", "dd", "section", "article", "header", "footer", "nav",
                       "aside", "main", "figure", "address", "center", "form", "body", "html", "caption"}
_NO_SELF_NEST = {"p", "li", "dt", "dd", "tr", "td", "th", "option"}
_START_TAG = re.compile(r"""<([a-zA-Z][^\s/<>]*+)((?:[^<>"']++|"[^"]*+"|'[^']*+')*+)>""")
_END_TAG = re.compile(r"</([a-zA-Z][^\s/<>]*+)[^<>]*+>")
_ATTR = re.compile(r"""([^\s=/<>"']+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?""")
_RAW_END: dict[str, re.Pattern] = {t: re.compile(rf"</{t}[\s/>]", re.I) for t in _RAW_TEXT}
_COLORS = {"white": "#ffffff", "black": "#000000", "transparent": "transparent"}
_ZERO = re.compile(r"^[0.]+(px|pt|em|rem|%)?$")


def _color(value: str) -> str | None:
    """#fff, #FFFFFF, white, rgb(255, 255, 255) → '#ffffff'; anything else we cannot compare → None."""
    v = value.strip().lower().removesuffix("!important").strip()
    if m := re.fullmatch(r"#([0-9a-f]{3}|[0-9a-f]{6})", v):
        h = m.group(1)
        return "#" + (h if len(h) == 6 else "".join(c * 2 for c in h))
    if m := re.fullmatch(r"rgba?\(\s*(\d+)\s*,\s*(\d+)\s*,\s*(\d+)\s*(?:,\s*([\d.]+)\s*)?\)", v):
        if m.group(4) is not None and _ZERO.match(m.group(4)):
            return "transparent"
        return "#%02x%02x%02x" % tuple(min(255, int(x)) for x in m.groups()[:3])
    return _COLORS.get(v)


def _style(state: tuple, tag: str, attrs: dict) -> tuple:
    """The inherited (dropped, gone, zero_size, color, background, pre) state of an element, updated by its own attributes."""
    dropped, gone, zero, color, bg, pre = state
    dropped, pre = dropped or tag in _DROPPED, pre or tag == "pre"
    gone = gone or "hidden" in attrs
    if "bgcolor" in attrs:
        bg = _color(attrs["bgcolor"]) or bg
    if tag == "font" and "color" in attrs:
        color = _color(attrs["color"]) or color
    decls = dict(d.split(":", 1) for d in attrs.get("style", "").lower().split(";") if ":" in d)
    decls = {k.strip(): v.strip().removesuffix("!important").strip() for k, v in decls.items()}
    gone = gone or decls.get("display") == "none" or decls.get("visibility") in ("hidden", "collapse")
    gone = gone or decls.get("mso-hide") == "all" or bool(_ZERO.match(decls.get("opacity", "1")))
    gone = gone or (decls.get("overflow") == "hidden" and any(_ZERO.match(decls.get(k, "1")) for k in ("max-height", "height")))
    if "font-size" in decls:
        zero = bool(_ZERO.match(decls["font-size"]))
    if "color" in decls:
        color = _color(decls["color"]) or color
    for key in ("background-color", "background"):
        found = [c for c in map(_color, decls.get(key, "").split()) if c]
        bg = found[0] if found else bg
    return dropped, gone, zero, color, bg, pre


class _HtmlText:
    """Collects text lines; a run of hidden text becomes lines of its own, each marked."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.cur: list[str] = []
        self.cur_hidden = False

    def add(self, text: str, state: tuple) -> None:
        dropped, gone, zero, color, bg, pre = state
        if dropped or not text:
            return
        hidden = gone or zero or color == "transparent" or (color is not None and color == (bg or "#ffffff"))
        if hidden != self.cur_hidden and text.strip():
            self.newline()
            self.cur_hidden = hidden
        if not pre:
            self.cur.append(text)
            return
        first, *rest = text.split("\n")
        self.cur.append(first)
        for line in rest:
            self.newline()
            self.cur.append(line)

    def newline(self, paragraph: bool = False) -> None:
        line = re.sub(r"[ \t\r\n\f\v\xa0]+", " ", "".join(self.cur)).strip() if self.cur else ""
        self.cur = []
        if line:
            self.lines.append("[hidden text] " + line if self.cur_hidden else line)
        if paragraph and self.lines and self.lines[-1]:
            self.lines.append("")

    def text(self) -> str:
        self.newline()
        return "\n".join(self.lines).strip()


def _attrs(raw: str) -> dict:
    return {m.group(1).lower(): htmllib.unescape(next((g for g in m.groups()[1:] if g is not None), ""))
            for m in _ATTR.finditer(raw)}


def html_to_text(html: str) -> str:
    """The text of an HTML body, in one pass: scripts, styles and comments dropped; hidden text kept and marked.

    Lines of text hidden by the `hidden` attribute or CSS (display:none, visibility:hidden,
    font-size:0, opacity:0, mso-hide:all, max-height:0 with overflow:hidden, a text colour equal
    to its background: white-on-white) start with "[hidden text] ". Only the first MAX_HTML_CHARS
    characters of markup are read.
    """
    html = html[:MAX_HTML_CHARS]
    root = (False, False, False, None, None, False)
    stack: list[tuple[str, tuple]] = []  # (tag, state); an end tag pops to its start tag, if it is open
    open_count: dict[str, int] = {}
    out, pos, n = _HtmlText(), 0, len(html)
    state = lambda: stack[-1][1] if stack else root  # noqa: E731

    def pop_to(tag: str) -> None:
        while stack:
            name, _ = stack.pop()
            open_count[name] -= 1
            if name in _BLOCK:
                out.newline(name in _PARAGRAPH)
            if name == tag:
                return

    text_from = 0  # text since the last markup, added when the next markup starts (a lone "<" is text)
    while (lt := html.find("<", pos)) >= 0:
        pos, m = lt + 1, None
        if html.startswith("<!--", lt):  # a comment; an unclosed one runs to the end, as in a browser
            end = html.find("-->", lt + 4)
            markup_end = n if end < 0 else end + 3
        elif html.startswith(("<!", "<?"), lt):  # doctype, CDATA, processing instruction
            end = html.find(">", lt + 2)
            markup_end = n if end < 0 else end + 1
        elif (m := (_END_TAG if html.startswith("</", lt) else _START_TAG).match(html, lt)) is not None:
            markup_end = m.end()
        else:
            continue
        if lt > text_from:
            out.add(htmllib.unescape(html[text_from:lt]), state())
        pos = text_from = markup_end
        if m is None:  # a comment or a declaration
            continue
        tag = m.group(1).lower()
        if m.re is _END_TAG:
            if open_count.get(tag):
                pop_to(tag)
            elif tag in ("br", "p"):
                out.newline(tag == "p")
            continue
        raw_attrs = m.group(2)
        if stack and ((stack[-1][0] == tag and tag in _NO_SELF_NEST) or (stack[-1][0] == "p" and tag in _BLOCK)):
            pop_to(stack[-1][0])
        if tag in _BLOCK or tag == "br":
            out.newline(tag in _PARAGRAPH)
        own = _style(state(), tag, _attrs(raw_attrs)) if raw_attrs.strip() or tag in _DROPPED or tag == "pre" else state()
        if tag in _RAW_TEXT:  # no markup inside: runs to its end tag
            close = _RAW_END[tag].search(html, pos)
            out.add(htmllib.unescape(html[pos:close.start() if close else n]), own)
            pos = text_from = n if close is None else html.find(">", close.start()) + 1 or n
        elif tag not in _VOID and not raw_attrs.rstrip().endswith("/"):
            stack.append((tag, own))
            open_count[tag] = open_count.get(tag, 0) + 1
    if text_from < n:
        out.add(htmllib.unescape(html[text_from:]), state())
    return out.text()
