"""/v1/containers: Code Interpreter sessions (a thread's, or one made here) and the files in them."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from assistants.errors import BadRequest
from assistants.responses import containers
from assistants.runtime import Runtime
from assistants.server.deps import TooLarge, get_runtime, json_body, page_params
from assistants.server.uploads import download, receive_upload

router = APIRouter(prefix="/containers", tags=["containers"])


@router.post("")
def create_container(body: dict = Depends(json_body), rt: Runtime = Depends(get_runtime)):
    return containers.create(rt, body)


@router.get("")
def list_containers(page: dict = Depends(page_params), rt: Runtime = Depends(get_runtime)):
    return containers.list_containers(rt, **page)


@router.get("/{container_id}")
def retrieve_container(container_id: str, rt: Runtime = Depends(get_runtime)):
    return containers.retrieve(rt, container_id)


@router.delete("/{container_id}")
def delete_container(container_id: str, rt: Runtime = Depends(get_runtime)):
    return containers.delete(rt, container_id)


@router.post("/{container_id}/files")
async def create_container_file(container_id: str, request: Request, rt: Runtime = Depends(get_runtime)):
    """JSON `{"file_id": ...}`, or multipart with the file's content in `file`."""
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        body = await json_body(request)
        for key in body:
            if key != "file_id":
                raise BadRequest(f"Unrecognized request argument supplied: {key}", param=key, code="unknown_parameter")
        if not isinstance(body.get("file_id"), str) or not body["file_id"]:
            raise BadRequest("Send file_id (JSON) or the file's content (multipart field 'file').", param="file_id")
        return await run_in_threadpool(containers.add_file, rt, container_id, file_id=body["file_id"])
    limit = rt.settings.max_upload_mb * 1024 * 1024

    def too_large(size: int, _limit: int) -> TooLarge:
        return TooLarge(f"File is too large: the upload limit is {rt.settings.max_upload_mb} MB. Nothing was stored.",
                        param="file", code="file_too_large")

    # Checked before the upload is stored, so a wrong container keeps no orphan file.
    await run_in_threadpool(containers.thread_of, rt, container_id)
    form = await receive_upload(request, rt.files.begin_upload, limit + 1024 * 1024, too_large, max_fields=4)
    try:
        for key in form.keys():
            if key not in ("file", "file_id"):
                raise BadRequest(f"Unrecognized request argument supplied: {key}", param=key, code="unknown_parameter")
        if form.upload is None:
            raise BadRequest("Missing required parameter: 'file' (a multipart file part).", param="file")
        return await run_in_threadpool(containers.add_file, rt, container_id, upload=form.upload)
    finally:
        await form.close()


@router.get("/{container_id}/files")
def list_container_files(container_id: str, page: dict = Depends(page_params), rt: Runtime = Depends(get_runtime)):
    return containers.list_files(rt, container_id, **page)


@router.get("/{container_id}/files/{file_id}")
def retrieve_container_file(container_id: str, file_id: str, rt: Runtime = Depends(get_runtime)):
    return containers.retrieve_file(rt, container_id, file_id)


@router.delete("/{container_id}/files/{file_id}")
def delete_container_file(container_id: str, file_id: str, rt: Runtime = Depends(get_runtime)):
    return containers.delete_file(rt, container_id, file_id)


@router.get("/{container_id}/files/{file_id}/content")
def container_file_content(container_id: str, file_id: str, rt: Runtime = Depends(get_runtime)):
    found, blocks = containers.file_content(rt, container_id, file_id)
    return download(blocks, found["bytes"], found["path"].rsplit("/", 1)[-1])
