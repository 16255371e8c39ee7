"""/v1/conversations and their items: a conversation is a thread (`conv_X` is `thread_X`)."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from assistants.responses import conversations as conv
from assistants.runtime import Runtime
from assistants.server.deps import get_runtime, json_body, only, page_params

router = APIRouter(prefix="/conversations", tags=["conversations"])


@router.post("")
def create_conversation(body: dict = Depends(json_body), rt: Runtime = Depends(get_runtime)):
    return conv.create(rt, **only(body, ("items", "metadata")))


@router.get("/{conversation_id}")
def retrieve_conversation(conversation_id: str, rt: Runtime = Depends(get_runtime)):
    return conv.retrieve(rt, conversation_id)


@router.post("/{conversation_id}")
def update_conversation(conversation_id: str, body: dict = Depends(json_body), rt: Runtime = Depends(get_runtime)):
    only(body, ("metadata",))
    return conv.update(rt, conversation_id, metadata=body.get("metadata"))


@router.delete("/{conversation_id}")
def delete_conversation(conversation_id: str, rt: Runtime = Depends(get_runtime)):
    return conv.delete(rt, conversation_id)


@router.post("/{conversation_id}/items")
def create_items(conversation_id: str, body: dict = Depends(json_body), rt: Runtime = Depends(get_runtime)):
    return conv.create_items(rt, conversation_id, **only(body, ("items",)))


@router.get("/{conversation_id}/items")
def list_items(conversation_id: str, page: dict = Depends(page_params), rt: Runtime = Depends(get_runtime)):
    return conv.list_items(rt, conversation_id, **page)


@router.get("/{conversation_id}/items/{item_id}")
def retrieve_item(conversation_id: str, item_id: str, rt: Runtime = Depends(get_runtime)):
    return conv.retrieve_item(rt, conversation_id, item_id)


@router.delete("/{conversation_id}/items/{item_id}")
def delete_item(conversation_id: str, item_id: str, rt: Runtime = Depends(get_runtime)):
    return conv.delete_item(rt, conversation_id, item_id)
