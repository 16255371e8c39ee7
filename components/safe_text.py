"""Untrusted text (model output, user text, file and tool names) made safe for st.markdown: it never fetches.

Streamlit's markdown draws `![](url)` as an <img> the browser loads at once, so a reply (or a document it
quotes) could send thread data to any server just by being shown. Here every image becomes a plain link with
its URL visible, HTML tag starts and hidden link definitions are shown as text, and `$` stays money instead of
LaTeX. Names and queries are shown as text, never as markdown. Our own images (figures the code made,
uploaded pictures) are drawn from their stored bytes with st.image, never from a URL in text.
"""

from __future__ import annotations

import re
from urllib.parse import urlparse

# The characters that make markup anywhere in a line (backslash-escaped, they are only text), and what makes it at
# the start of a line (lists, headings, quotes, setext and table lines). Other punctuation stays as it is, readable.
_PUNCT = re.compile(r"([\\`*_\[\]()<>!|~$&])")
_LINE_START = re.compile(r"^([-+=#>]|\d{1,9}(?=[.)]))")
# A fenced code block at the top level (column 0; fences in lists or quotes are treated as text, which is only
# cosmetic: a fence in a list item can end earlier than it seems, so trusting it could let an image through).
_FENCE = re.compile(r"^(`{3,}|~{3,})(.*)$")
_CLOSE = re.compile(r"^ {0,3}(`{3,}|~{3,})[ \t]*$")
# Any fence, also in a list or a quote: its lines only lose the escapes that are just for looks (`$`, `<`).
_LOOSE_FENCE = re.compile(r"^[ \t>]*(?:(?:[-*+]|\d{1,9}[.)])[ \t]+)?[ \t]*(`{3,}|~{3,})(.*)$")
# A one-line inline image: ![alt](url "title"). Other image forms are still neutralised, just less prettily.
_IMAGE = re.compile(r"""!\[([^\[\]\n]*)\]\(\s*(<[^<>\n]*>|[^\s()<>]*)(?:\s+(?:"[^"\n]*"|'[^'\n]*'|\([^()\n]*\)))?\s*\)""")
# A link reference definition `[label]: url` (at a line start, also inside quotes and list items): shown as text,
# so no link hides its target.
_DEFINITION = re.compile(r"^((?:[ \t]*(?:>|[-*+]|\d{1,9}[.)])?[ \t]*)*)\[(?=[^\]]*\]:)")
_UNSAFE_LINK = re.compile(r"\]\((?![ \t]*<?[ \t]*(?:https?://|mailto:))")
_TAG_START = re.compile(r"[A-Za-z/!?]")
_SAFE_SCHEMES = ("http", "https", "mailto")
# Direction overrides and isolates: untrusted text must not turn the rest of the page around ("gnp.exe").
_BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")


def visible(text: str) -> str:
    """`text` with its direction-control characters shown as codes instead of obeyed."""
    return _BIDI.sub(lambda m: f"⟨U+{ord(m.group()):04X}⟩", text)


def plain(text: str) -> str:
    """Markdown that shows `text` exactly as written: nothing is markup, line breaks and indents stay."""
    lines = visible(str(text or "")).replace("\r\n", "\n").replace("\r", "\n").rstrip("\n").split("\n")
    return "\\\n".join(_plain_line(line) for line in lines)  # a backslash at a line's end is a hard line break


def _plain_line(line: str) -> str:
    if not line.strip():
        return "&#8203;"  # a blank line stays a visible gap instead of ending the paragraph
    body = line.lstrip(" \t")
    indent = line[:len(line) - len(body)].replace("\t", "    ")
    body = _PUNCT.sub(r"\\\1", body)
    body = _LINE_START.sub(lambda m: "\\" + m.group(1) if not m.group(1).isdigit() else m.group(1) + "\\", body)
    return "&nbsp;" * len(indent) + body


def code_text(text: str) -> str:
    """`text` as one inline code span (names, queries, URLs): literal, on one line."""
    text = " ".join(visible(str(text or "")).split())
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text or ' '}{pad}{fence}"


def shown_url(url: str) -> str:
    """An image's URL as a link the user may click (http/https only) with the URL itself visible; else as text."""
    url = url.strip()
    if url.startswith("<") and url.endswith(">"):
        url = url[1:-1]
    clean = _INVISIBLE.sub("", url)
    scheme = urlparse(clean).scheme.lower()
    if scheme in _SAFE_SCHEMES and clean == url and "⟨U+" not in url and not any(c in url for c in "()<>[] \\"):
        return f"[{plain(url)}]({url})"
    return code_text(url)


def _escaped(line: str, at: int) -> bool:
    """Whether the character at `at` is backslash-escaped (an odd run of backslashes before it)."""
    n = 0
    while at - n - 1 >= 0 and line[at - n - 1] == "\\":
        n += 1
    return n % 2 == 1


def _image_as_link(match: re.Match) -> str:
    alt, url = match.group(1), match.group(2)
    label = f":material/image: {plain(alt)} " if alt.strip() else ":material/image: "
    if url.strip().startswith("sandbox:") or not url.strip():
        return f"{label}(image not shown)"
    return f"{label}(image not loaded: {shown_url(url)})"


def _code_spans(line: str) -> list[tuple[int, int]]:
    """Where this line's inline code spans are (CommonMark: a backtick run closed by a run of the same length)."""
    spans, i = [], 0
    while i < len(line):
        if line[i] == "\\":
            i += 2
            continue
        if line[i] != "`":
            i += 1
            continue
        j = i
        while j < len(line) and line[j] == "`":
            j += 1
        run = j - i
        close = re.compile(rf"(?<!`)`{{{run}}}(?!`)").search(line, j)
        if close:
            spans.append((i, close.end()))
            i = close.end()
        else:
            i = j
    return spans


def _inline(line: str, code: bool = False) -> str:
    """One line of text outside top-level code blocks, neutralised (`code`: it seems to be in a nested code block)."""
    if code:
        return re.sub(r"(?<!\\)((?:\\\\)*)!\[", r"\1\\![", line)  # an unescaped `![`: escaped, nothing else
    line = _DEFINITION.sub(r"\1\\[", line)
    spans = _code_spans(line)

    def image(m: re.Match) -> str:
        inside = any(a <= m.start() < b for a, b in spans)
        return m.group(0) if inside or _escaped(line, m.start()) else _image_as_link(m)

    def link(m: re.Match) -> str:
        inside = any(a <= m.start() < b for a, b in spans)
        return m.group(0) if inside or _escaped(line, m.start()) else "]\\("

    line = _IMAGE.sub(image, line)
    spans = _code_spans(line)
    # A link goes only to a web or mail address; anything else (javascript:, data:, entities hiding a scheme,
    # relative paths into this app) is shown as text, its target visible.
    line = _UNSAFE_LINK.sub(link, line)
    spans = _code_spans(line)
    out, i = [], 0
    while i < len(line):
        ch = line[i]
        span = next((s for s in spans if s[0] <= i < s[1]), None)
        if ch == "\\" and span is None:
            out.append(line[i:i + 2])  # an escape pair: the next character is already literal
            i += 2
            continue
        if ch == "!" and line[i + 1:i + 2] == "[":
            # Always, even inside what looks like code: a misjudged code span must cost a backslash, not a fetch.
            out.append("\\!")
        elif span is None and ch == "<" and _TAG_START.match(line[i + 1:i + 2]):
            out.append("\\<")
        elif span is None and ch == "$":
            out.append("\\$")
        else:
            out.append(ch)
        i += 1
    return "".join(out)


class MarkdownSanitiser:
    """Model or user markdown made safe for st.markdown; fed piece by piece while a reply streams."""

    def __init__(self) -> None:
        self.done = ""              # finished lines, already safe, each ending in a newline
        self.partial = ""           # the line still being written
        self.fence = ""             # the open top-level fence ("```", "~~~~"…), or ""
        self.loose = ""             # the open fence anywhere (in a list, a quote…), or ""

    def _line(self, line: str) -> str:
        if self.fence:
            close = _CLOSE.match(line)
            if close and close.group(1)[0] == self.fence[0] and len(close.group(1)) >= len(self.fence):
                self.fence = self.loose = ""
            return line
        opening = _FENCE.match(line)
        if opening and not (opening.group(1)[0] == "`" and "`" in opening.group(2)):
            self.fence = self.loose = opening.group(1)
            return line
        loose = _LOOSE_FENCE.match(line)
        if self.loose:
            if loose and loose.group(1)[0] == self.loose[0] and len(loose.group(1)) >= len(self.loose) \
                    and not loose.group(2).strip():
                self.loose = ""
            return _inline(line, code=True)
        if loose and not (loose.group(1)[0] == "`" and "`" in loose.group(2)):
            self.loose = loose.group(1)
            return _inline(line, code=True)
        return _inline(line)

    def feed(self, text: str) -> str:
        """Add a piece; returns the whole text so far, safe (the unfinished last line is re-checked each time)."""
        *complete, self.partial = (self.partial + visible(text)).split("\n")
        if complete:
            self.done += "".join(self._line(line) + "\n" for line in complete)
        fences = self.fence, self.loose
        tail = self._line(self.partial)
        self.fence, self.loose = fences  # the unfinished line is not committed: it may still become something else
        return self.done + tail


def safe_markdown(text: str) -> str:
    """Model or user markdown ready for st.markdown: no image loads, no HTML, `$` stays a dollar."""
    return MarkdownSanitiser().feed(str(text or ""))
