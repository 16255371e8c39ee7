"""Annotations on a reply: file_path links to files the code wrote, file_citation where it quotes a source."""

from __future__ import annotations

import re

# Ours is 【3†name】; models trained on OpenAI's write 【4:3†name】 (message:result), where the result is the second number.
_MARKER = re.compile(r"【(\d+)(?::(\d+))?†([^】]*)】")
_MIN_QUOTE = 40


def annotate(text: str, candidates: list[dict]) -> list[dict]:
    """OpenAI-shaped annotations for `text` from the tool outcomes' candidates.

    Candidates: {"type": "file_path", "text": "sandbox:/mnt/data/x", "file_id"} and
    {"type": "file_citation", "marker": "【0†name】", "index": 0, "file_id", "quote": chunk text}.
    """
    out: list[dict] = []
    for cand in candidates:
        if cand.get("type") != "file_path":
            continue
        for match in re.finditer(re.escape(cand["text"]), text):
            out.append({"type": "file_path", "text": cand["text"], "start_index": match.start(),
                        "end_index": match.end(), "file_path": {"file_id": cand["file_id"]}})
    citations = [c for c in candidates if c.get("type") == "file_citation"]
    by_index = {c.get("index"): c for c in citations}
    for match in _MARKER.finditer(text):
        number = int(match.group(2) or match.group(1))
        cand = by_index.get(number) or next((c for c in citations if c.get("filename") == match.group(3)), None)
        if cand:
            out.append({"type": "file_citation", "text": match.group(0), "start_index": match.start(),
                        "end_index": match.end(), "file_citation": {"file_id": cand["file_id"]}})
    if citations and not any(a["type"] == "file_citation" for a in out):
        out.extend(_verbatim_quotes(text, citations))
    return sorted(out, key=lambda a: a["start_index"])


def _verbatim_quotes(text: str, citations: list[dict]) -> list[dict]:
    """A source sentence the reply repeats word for word is cited even without a marker."""
    out, taken = [], set()
    for cand in citations:
        for sentence in re.split(r"(?<=[.!?])\s+|\n+", cand.get("quote") or ""):
            piece = sentence.strip().rstrip(".!?")
            start = text.find(piece) if len(piece) >= _MIN_QUOTE else -1
            if start >= 0 and start not in taken:
                taken.add(start)
                out.append({"type": "file_citation", "text": piece, "start_index": start, "end_index": start + len(piece),
                            "file_citation": {"file_id": cand["file_id"]}})
    return out
