"""/v1/containers (read-only): a thread's Code Interpreter session and the files in it."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response

from assistants.responses import containers
from assistants.runtime import Runtime
from assistants.server.deps import get_runtime, page_params

router = APIRouter(prefix="/containers", tags=["containers"])


@router.get("/{container_id}")
def retrieve_container(container_id: str, rt: Runtime = Depends(get_runtime)):
    return containers.retrieve(rt, container_id)


@router.get("/{container_id}/files")
def list_container_files(container_id: str, page: dict = Depends(page_params), rt: Runtime = Depends(get_runtime)):
    return containers.list_files(rt, container_id, **page)


@router.get("/{container_id}/files/{file_id}")
def retrieve_container_file(container_id: str, file_id: str, rt: Runtime = Depends(get_runtime)):
    return containers.retrieve_file(rt, container_id, file_id)


@router.get("/{container_id}/files/{file_id}/content")
def container_file_content(container_id: str, file_id: str, rt: Runtime = Depends(get_runtime)):
    return Response(containers.file_content(rt, container_id, file_id), media_type="application/octet-stream")
