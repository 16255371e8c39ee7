"""Read-only containers: the Code Interpreter session of a thread (`cntr_X` is thread_X's), and the files in it."""

from __future__ import annotations

from typing import Any

from assistants.errors import APIError, NotFound
from assistants.responses.output import container_id, run_steps
from assistants.responses.paging import page
from assistants.runtime import list_every


def thread_of(rt: Any, cntr_id: str) -> dict:
    """The thread whose session the container is; 404 when there is none."""
    try:
        return rt.get_thread("thread_" + cntr_id.removeprefix("cntr_"))
    except NotFound:
        raise NotFound(f"Container with id '{cntr_id}' not found.", param="container_id", code="not_found") from None


def retrieve(rt: Any, cntr_id: str) -> dict:
    thread = thread_of(rt, cntr_id)
    minutes = rt.settings.code_idle_minutes
    return {"id": container_id(thread["id"]), "object": "container", "created_at": thread["created_at"],
            "name": f"Code Interpreter session of {thread['id']}", "status": "running",
            "expires_after": {"anchor": "last_active_at", "minutes": round(minutes)} if minutes > 0 else None,
            "last_active_at": thread["created_at"]}


def _files(rt: Any, thread: dict) -> list[dict]:
    """The files given to the session and the ones its code wrote (figures, files it saved), oldest first."""
    cid = container_id(thread["id"])
    found: dict[str, str] = {}
    for file_id in ((thread.get("tool_resources") or {}).get("code_interpreter") or {}).get("file_ids") or []:
        found.setdefault(file_id, "user")
    for run in list_every(rt.list_runs, thread_id=thread["id"])[::-1]:
        for step in run_steps(rt, thread["id"], run["id"]):
            if step["type"] != "tool_calls":
                continue
            for call in step["step_details"]["tool_calls"]:
                for out in (call.get("code_interpreter") or {}).get("outputs") or []:
                    if out.get("type") == "image":
                        found.setdefault(out["image"]["file_id"], "assistant")
    for msg in list_every(rt.list_messages, thread_id=thread["id"])[::-1]:
        for block in msg.get("content") or []:
            for note in (block.get("text") or {}).get("annotations") or []:
                if note.get("type") == "file_path":
                    found.setdefault(note["file_path"]["file_id"], "assistant")
    out = []
    for file_id, source in found.items():
        try:
            meta = rt.files.get(file_id)
        except (APIError, AttributeError):
            continue
        out.append({"id": file_id, "object": "container.file", "container_id": cid, "created_at": meta["created_at"],
                    "bytes": meta.get("bytes") or 0, "path": f"/mnt/data/{meta['filename']}", "source": source})
    return out


def list_files(rt: Any, cntr_id: str, **paging: Any) -> dict:
    return page(_files(rt, thread_of(rt, cntr_id)), **paging)


def retrieve_file(rt: Any, cntr_id: str, file_id: str) -> dict:
    found = next((f for f in _files(rt, thread_of(rt, cntr_id)) if f["id"] == file_id), None)
    if found is None:
        raise NotFound(f"File '{file_id}' is not in container '{cntr_id}'.", param="file_id", code="not_found")
    return found


def file_content(rt: Any, cntr_id: str, file_id: str) -> bytes:
    retrieve_file(rt, cntr_id, file_id)
    return rt.files.content(file_id)
