"""The sanitiser, attacked: no markdown it returns can make the browser load anything."""

from __future__ import annotations

import re

import pytest

from components.safe_text import MarkdownSanitiser, code_text, plain, safe_markdown, shown_url

pytestmark = pytest.mark.no_database  # no store: runs once, not per database

A = "http://127.0.0.1:9/x"
VECTORS = [
    f"![]({A}?q=secret)",
    f"![alt]({A} \"title\")",
    f"![alt](<{A}>)",
    f"![a][1]\n\n[1]: {A}",
    f"![a]\n\n[a]: {A}",
    f"![a][]\n\n[a]: <{A}> 'title'",
    f"> quote ![q]({A})\n> [2]: {A}",
    f"- item ![l]({A})\n  1. [3]: {A}",
    f'<img src="{A}">',
    f"<IMG SRC={A}>",
    f"<svg><image href='{A}'/></svg>",
    f"<{A}>",
    f"![a ![b]({A})]({A})",
    f"![a [b] c]({A})",
    f"![a\nb]({A})",
    f"\\\\![x]({A})",
    f"\\\\\\\\![x]({A})",
    f"`a` ![x]({A})",
    f"``a ` b`` ![x]({A})",
    f"`unclosed ![x]({A})",
    f"- a\n  ```\n![x]({A})\n  ```",
    f"> ```\n![x]({A})",
    f"```\ncode\n```\n![x]({A})",
    f"~~~\n```\n~~~\n![x]({A})",
    f"``` a`b\n![x]({A})",
    f"[x](javascript:fetch('{A}'))",
    "[x](&#106;avascript:alert(1))",
    "[x]( JAVASCRIPT:alert(1))",
    "[x](<javascript:alert(1)>)",
    f"[x](data:text/html,<script>fetch('{A}')</script>)",
    f"![x](data:image/svg+xml,<svg onload=fetch('{A}')>)",
    f"![x]({A}\u202e.png)",
    f"！[x]({A}) ![x]（{A}）",
]


def unescaped_image(md: str) -> bool:
    """Whether `md` still holds image syntax outside a top-level code fence (an even run of backslashes before `![`)."""
    fence = ""
    for line in md.split("\n"):
        opening = re.match(r"^(`{3,}|~{3,})", line)
        if fence:
            if re.match(rf"^ {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}\s*$", line):
                fence = ""
            continue
        if opening:
            fence = opening.group(1)
            continue
        for m in re.finditer(r"(\\*)!\[", line):
            if len(m.group(1)) % 2 == 0:
                return True
    return False


@pytest.mark.parametrize("text", VECTORS)
def test_no_vector_survives(text):
    out = safe_markdown(text)
    assert not unescaped_image(out), out
    assert not re.search(r"(?<!\\)<(?=[A-Za-z/!?])", out), out  # no tag or autolink start left
    assert not re.search(r"(?<!\\)\]\((?!https?://|mailto:)", out), out  # no link to anything but the web or mail
    assert not re.search(r"^\s*(?:>\s*)*(?:[-*+]\s+|\d+[.)]\s+)?\[[^\]]*\]:", out, re.M), out  # no hidden target
    # Piece by piece (a streaming reply) gives the same result at the end, and nothing unsafe on the way.
    s = MarkdownSanitiser()
    for ch in text:
        assert not unescaped_image(s.feed(ch))
    assert s.feed("") == out


def test_images_become_links_with_the_url_visible():
    out = safe_markdown(f"See ![chart]({A}/c.png?q=1)")
    assert "image not loaded" in out and f"({A}/c.png?q=1)" in out and "chart" in out
    assert safe_markdown("![chart](sandbox:/mnt/data/c.png)").endswith("(image not shown)")
    assert shown_url("javascript:alert(1)").startswith("`") and shown_url("data:x").startswith("`")
    assert shown_url("https://a.example/x") == "[https://a.example/x](https://a.example/x)"


def test_money_code_and_ordinary_markdown_stay():
    assert safe_markdown("**bold** [OpenAI](https://openai.com) `$x` costs $5") == \
        "**bold** [OpenAI](https://openai.com) `$x` costs \\$5"
    fenced = "```rust\nlet v = vec![1, 2];\nif a < b { println!(\"$x\") }\n```"
    assert safe_markdown(fenced) == fenced
    assert safe_markdown("- a\n  ```\n  vec![1] $x <b>\n  ```") == "- a\n  ```\n  vec\\![1] $x <b>\n  ```"
    assert safe_markdown("x < y and a<-b") == "x < y and a<-b"


def test_plain_shows_text_as_written():
    out = plain("Shopping list:\n- milk\neggs\nbread")
    assert out == "Shopping list:\\\n\\- milk\\\neggs\\\nbread"
    assert plain("![x](http://e) <img src=x> :red[hi] $1 *a* a|b") == \
        "\\!\\[x\\]\\(http://e\\) \\<img src=x\\> :red\\[hi\\] \\$1 \\*a\\* a\\|b"
    assert plain("1. one\n# two\n> three\n===") == "1\\. one\\\n\\# two\\\n\\> three\\\n\\==="
    assert plain("a\n\nb") == "a\\\n&#8203;\\\nb" and plain("  indented") == "&nbsp;&nbsp;indented"
    assert plain("ends with a backslash \\") == "ends with a backslash \\\\"
    assert "\u202e" not in plain("evil\u202egnp.exe") and "U+202E" in plain("evil\u202egnp.exe")


def test_code_text_cannot_be_broken_out_of():
    assert code_text("name") == "`name`"
    assert code_text("a`b") == "``a`b``" and code_text("``x") == "``` ``x ```"
    assert code_text("two\nlines") == "`two lines`" and code_text("") == "` `"
