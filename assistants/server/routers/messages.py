"""/v1/threads/{thread_id}/messages: create, list (with run_id), retrieve, modify, delete."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request

from assistants.runtime import Runtime
from assistants.server.deps import get_runtime, json_body, modify_metadata, only, page_params

router = APIRouter(prefix="/threads/{thread_id}/messages", tags=["messages"])


@router.post("")
def create_message(thread_id: str, body: dict = Depends(json_body), rt: Runtime = Depends(get_runtime)):
    return rt.create_message(thread_id, **only(body, ("role", "content", "attachments", "metadata")))


@router.get("")
def list_messages(thread_id: str, request: Request, page: dict = Depends(page_params),
                  rt: Runtime = Depends(get_runtime)):
    return rt.list_messages(thread_id, run_id=request.query_params.get("run_id") or None, **page)


@router.get("/{message_id}")
def retrieve_message(thread_id: str, message_id: str, rt: Runtime = Depends(get_runtime)):
    return rt.get_message(thread_id, message_id)


@router.post("/{message_id}")
def modify_message(thread_id: str, message_id: str, body: dict = Depends(json_body),
                   rt: Runtime = Depends(get_runtime)):
    return modify_metadata(body, rt.get_message, rt.update_message, thread_id, message_id)


@router.delete("/{message_id}")
def delete_message(thread_id: str, message_id: str, rt: Runtime = Depends(get_runtime)):
    return rt.delete_message(thread_id, message_id)
