"""/v1/threads: create (with messages and tool_resources), retrieve, modify, delete."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from assistants.runtime import Runtime
from assistants.server.deps import get_runtime, json_body, only

router = APIRouter(prefix="/threads", tags=["threads"])

THREAD_FIELDS = ("messages", "tool_resources", "metadata")


@router.post("")
def create_thread(body: dict = Depends(json_body), rt: Runtime = Depends(get_runtime)):
    return rt.create_thread(**only(body, THREAD_FIELDS))


@router.get("/{thread_id}")
def retrieve_thread(thread_id: str, rt: Runtime = Depends(get_runtime)):
    return rt.get_thread(thread_id)


@router.post("/{thread_id}")
def modify_thread(thread_id: str, body: dict = Depends(json_body), rt: Runtime = Depends(get_runtime)):
    return rt.update_thread(thread_id, **only(body, ("metadata", "tool_resources")))


@router.delete("/{thread_id}")
def delete_thread(thread_id: str, rt: Runtime = Depends(get_runtime)):
    return rt.delete_thread(thread_id)
