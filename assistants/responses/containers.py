"""Containers: Code Interpreter sessions. `cntr_X` is thread_X's session; one made by `containers.create` is an
empty thread of its own, tagged in its metadata, whose session and files any response can name."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from assistants import validation as v
from assistants.errors import APIError, BadRequest, NotFound, Unsupported
from assistants.responses.output import container_id
from assistants.responses.paging import page
from assistants.tools.ci_outputs import thread_outputs

TAG = "playground"
STANDALONE = "container"  # metadata[TAG] of a thread that is a container made by containers.create
FIELDS = {"name", "expires_after", "file_ids", "memory_limit", "network_policy", "skills"}
MEMORY_LIMITS = {"1g": 1024, "4g": 4096, "16g": 16384, "64g": 65536}  # memory_limit -> the session's cgroup MB
EXPIRED = "expired"
MAX_FILES = 20  # what a thread's code_interpreter.file_ids holds


def not_found(cntr_id: str) -> NotFound:
    return NotFound(f"Container with id '{cntr_id}' not found.", param="container_id", code="not_found")


def thread_of(rt: Any, cntr_id: str) -> dict:
    """The thread whose session the container is (expired now if it idled past its expires_after); 404 if none."""
    if not isinstance(cntr_id, str) or not cntr_id.startswith("cntr_"):
        raise not_found(str(cntr_id))
    try:
        return expire_if_due(rt, rt.get_thread("thread_" + cntr_id.removeprefix("cntr_")))
    except NotFound:
        raise not_found(cntr_id) from None


def live_thread_of(rt: Any, cntr_id: str, param: str = "container_id") -> dict:
    """thread_of, refusing an expired container with a 400 that says what to do."""
    thread = thread_of(rt, cntr_id)
    if expired(thread):
        minutes = (thread.get("metadata") or {}).get("expires_after_minutes")
        raise BadRequest(f"Container '{cntr_id}' has expired (it was idle for more than {minutes} minutes): its "
                         "session and files are gone. Create a new container.", param=param, code="container_expired")
    return thread


def standalone(thread: dict) -> bool:
    return (thread.get("metadata") or {}).get(TAG) == STANDALONE


def expired(thread: dict) -> bool:
    return (thread.get("metadata") or {}).get("status") == EXPIRED


def expire_if_due(rt: Any, thread: dict) -> dict:
    """A container of its own idle for longer than its expires_after ends: status expired, session and files gone.

    Checked whenever the container is looked at (no timer: what anyone sees is the same as if one had fired).
    """
    meta = thread.get("metadata") or {}
    minutes = int(meta.get("expires_after_minutes") or 0)
    if not standalone(thread) or expired(thread) or minutes <= 0:
        return thread
    last = int(meta.get("last_active_at") or thread["created_at"])
    if time.time() - last < minutes * 60:
        return thread
    _empty(rt, thread)
    return rt.update_thread(thread["id"], metadata={**meta, "status": EXPIRED})


def memory_mb(thread: dict) -> int | None:
    """The session budget a container of its own asked for (memory_limit), None for the server's default."""
    return MEMORY_LIMITS.get((thread.get("metadata") or {}).get("memory_limit") or "")


def _object(rt: Any, thread: dict) -> dict:
    meta = thread.get("metadata") or {}
    if standalone(thread):
        name, minutes = meta.get("name") or "", int(meta.get("expires_after_minutes") or 0)
    else:
        name, minutes = f"Code Interpreter session of {thread['id']}", round(rt.settings.code_idle_minutes)
    return {"id": container_id(thread["id"]), "object": "container", "created_at": thread["created_at"],
            "name": name, "status": EXPIRED if expired(thread) else "running",
            "expires_after": {"anchor": "last_active_at", "minutes": minutes} if minutes > 0 else None,
            "last_active_at": int(meta.get("last_active_at") or thread["created_at"]),
            "memory_limit": meta.get("memory_limit") or "1g", "network_policy": {"type": "disabled"}}


def retrieve(rt: Any, cntr_id: str) -> dict:
    return _object(rt, thread_of(rt, cntr_id))


def standalone_threads(rt: Any) -> list[dict]:
    """Threads that are containers made by containers.create, oldest first.

    A scan of every thread: the store has no query for a metadata tag yet (wanted: threads whose
    metadata.playground = 'container', in creation order, like Store.latest_thread's json_extract).
    """
    return [expire_if_due(rt, t) for t in rt.store.all("threads", order="asc") if standalone(t)]


def list_containers(rt: Any, **paging: Any) -> dict:
    """Containers made by containers.create (a thread's own session is retrievable by id, not listed)."""
    return page([_object(rt, t) for t in standalone_threads(rt)], **paging)


def create(rt: Any, body: dict) -> dict:
    """A container of its own: an empty thread tagged as one, holding the given files."""
    for key in body:
        if key not in FIELDS:
            raise BadRequest(f"Unrecognized request argument supplied: {key}", param=key, code="unknown_parameter")
    name = v.string(body.get("name"), "name", 256, required=True)
    meta = {TAG: STANDALONE, "name": name}
    expires = body.get("expires_after")
    if expires is not None:
        minutes = expires.get("minutes") if isinstance(expires, dict) else None
        if not isinstance(expires, dict) or expires.get("anchor") != "last_active_at" or set(expires) - {"anchor", "minutes"}:
            raise BadRequest("expires_after must be {\"anchor\": \"last_active_at\", \"minutes\": N}.",
                             param="expires_after")
        if isinstance(minutes, bool) or not isinstance(minutes, int) or not 1 <= minutes <= 1440:
            raise BadRequest("expires_after.minutes must be an integer from 1 to 1440.", param="expires_after.minutes")
        meta["expires_after_minutes"] = str(minutes)
    limit = memory_limit(body.get("memory_limit"), "memory_limit")
    if limit is not None:
        meta["memory_limit"] = limit  # the session's cgroup memory limit (container_sessions.py)
    policy = body.get("network_policy")
    if policy is not None and policy != {"type": "disabled"}:
        raise Unsupported("network_policy can only be {\"type\": \"disabled\"}: the sandbox has no network.",
                          param="network_policy", code="unsupported_parameter")
    if body.get("skills"):
        raise Unsupported("skills are not supported by this server.", param="skills", code="unsupported_parameter")
    ids = _file_ids(rt, body.get("file_ids"))
    thread = rt.create_thread(tool_resources={"code_interpreter": {"file_ids": ids}}, metadata=meta)
    return _object(rt, thread)


def memory_limit(value: Any, param: str) -> str | None:
    """A memory_limit checked: 1g, 4g, 16g or 64g (None when not given)."""
    if value is None:
        return None
    if not isinstance(value, str) or value not in MEMORY_LIMITS:
        raise BadRequest(f"{param} must be one of {', '.join(MEMORY_LIMITS)} (got {str(value)[:20]!r}).", param=param,
                         code="invalid_value")
    return value


def _file_ids(rt: Any, value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(i, str) for i in value) or len(value) > MAX_FILES:
        raise BadRequest(f"file_ids must be a list of at most {MAX_FILES} file ids.", param="file_ids")
    for file_id in value:
        _file(rt, file_id, "file_ids")
    return list(dict.fromkeys(value))


def _file(rt: Any, file_id: str, param: str) -> dict:
    try:
        return rt.files.get(file_id)
    except (NotFound, AttributeError):
        raise BadRequest(f"File '{file_id}' does not exist.", param=param, code="invalid_value") from None


def delete(rt: Any, cntr_id: str) -> dict:
    """A container of its own goes with its thread; a thread's session is ended and emptied, the thread stays."""
    thread = thread_of(rt, cntr_id)
    if standalone(thread):
        rt.delete_thread(thread["id"])
    else:
        _empty(rt, thread)
    return {"id": cntr_id, "object": "container.deleted", "deleted": True}


def _empty(rt: Any, thread: dict) -> None:
    """End a thread's session (its variables and /mnt/data) and delete the files given to it or written there."""
    interpreter = getattr(rt, "code_interpreter", None)
    if interpreter is not None:
        interpreter.reset(thread["id"])
    resources = dict(thread.get("tool_resources") or {})
    if (resources.get("code_interpreter") or {}).get("file_ids"):
        resources["code_interpreter"] = {"file_ids": []}
        rt.update_thread(thread["id"], tool_resources=resources)
    for f in thread_outputs(rt, thread["id"]):
        try:
            rt.files.delete(f["id"])
        except APIError:
            pass


def touch(rt: Any, thread: dict) -> None:
    """Mark a container of its own active now (its last_active_at)."""
    if standalone(thread):
        rt.update_thread(thread["id"], metadata={**thread["metadata"], "last_active_at": str(int(time.time()))})


# -- files ----------------------------------------------------------------------------------------------------
def given_ids(thread: dict) -> list[str]:
    return list(((thread.get("tool_resources") or {}).get("code_interpreter") or {}).get("file_ids") or [])


def _files(rt: Any, thread: dict) -> list[dict]:
    """The files given to the session and the ones its code wrote (figures, files it saved), oldest first."""
    cid = container_id(thread["id"])
    found = {file_id: "user" for file_id in given_ids(thread)}
    for f in sorted(thread_outputs(rt, thread["id"]), key=lambda f: f.get("created_at", 0)):
        found.setdefault(f["id"], "assistant")
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
    return page(_files(rt, live_thread_of(rt, cntr_id)), **paging)


def retrieve_file(rt: Any, cntr_id: str, file_id: str) -> dict:
    found = next((f for f in _files(rt, live_thread_of(rt, cntr_id)) if f["id"] == file_id), None)
    if found is None:
        raise NotFound(f"File '{file_id}' is not in container '{cntr_id}'.", param="file_id", code="not_found")
    return found


def file_content(rt: Any, cntr_id: str, file_id: str) -> tuple[dict, Iterator[bytes]]:
    """A container file's metadata and its bytes, block by block."""
    found = retrieve_file(rt, cntr_id, file_id)
    return found, rt.files.chunks(file_id)


def add_file(rt: Any, cntr_id: str, *, file_id: str | None = None, upload: Any = None) -> dict:
    """Give the session a file: an uploaded one by id, or new content (a FileService `Upload`, made a file here)."""
    thread = live_thread_of(rt, cntr_id)
    ids = given_ids(thread)
    if len(ids) >= MAX_FILES:
        raise BadRequest(f"Container '{cntr_id}' holds {MAX_FILES} files already; delete one first.", param="file")
    if upload is not None:
        file_id = upload.finish("assistants")["id"]
    else:
        _file(rt, file_id, "file_id")
    if file_id not in ids:
        resources = {**(thread.get("tool_resources") or {}), "code_interpreter": {"file_ids": [*ids, file_id]}}
        rt.update_thread(thread["id"], tool_resources=resources)
    touch(rt, rt.get_thread(thread["id"]))
    return retrieve_file(rt, cntr_id, file_id)


def delete_file(rt: Any, cntr_id: str, file_id: str) -> dict:
    """A given file leaves the container (the file itself stays); one the code wrote is deleted.

    A session already running keeps its copy in /mnt/data until it ends (idle, or the container is deleted).
    """
    thread = live_thread_of(rt, cntr_id)
    retrieve_file(rt, cntr_id, file_id)
    ids = given_ids(thread)
    if file_id in ids:
        ids.remove(file_id)
        rt.update_thread(thread["id"], tool_resources={**(thread.get("tool_resources") or {}),
                                                       "code_interpreter": {"file_ids": ids}})
    else:
        rt.files.delete(file_id)
    return {"id": file_id, "object": "container.file.deleted", "deleted": True}
