"""/v1/assistants: create, list, retrieve, modify, delete."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from assistants.runtime import ASSISTANT_FIELDS, Runtime
from assistants.server.deps import get_runtime, json_body, only, page_params

router = APIRouter(prefix="/assistants", tags=["assistants"])


@router.post("")
def create_assistant(body: dict = Depends(json_body), rt: Runtime = Depends(get_runtime)):
    return rt.create_assistant(**only(body, ASSISTANT_FIELDS))


@router.get("")
def list_assistants(page: dict = Depends(page_params), rt: Runtime = Depends(get_runtime)):
    return rt.list_assistants(**page)


@router.get("/{assistant_id}")
def retrieve_assistant(assistant_id: str, rt: Runtime = Depends(get_runtime)):
    return rt.get_assistant(assistant_id)


@router.post("/{assistant_id}")
def modify_assistant(assistant_id: str, body: dict = Depends(json_body), rt: Runtime = Depends(get_runtime)):
    return rt.update_assistant(assistant_id, **only(body, ASSISTANT_FIELDS))


@router.delete("/{assistant_id}")
def delete_assistant(assistant_id: str, rt: Runtime = Depends(get_runtime)):
    return rt.delete_assistant(assistant_id)
