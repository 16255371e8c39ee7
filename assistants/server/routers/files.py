"""/v1/files: multipart upload, list, retrieve, content, delete (over `rt.files`)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException

from assistants.errors import BadRequest, Unsupported
from assistants.runtime import Runtime
from assistants.server.deps import get_runtime, page_params, service

router = APIRouter(prefix="/files", tags=["files"])

FORM_SLACK = 1024 * 1024  # multipart framing and the purpose field on top of the file itself


@router.post("")
async def upload_file(request: Request, rt: Runtime = Depends(get_runtime)):
    files = service(rt, "files")
    limit = rt.settings.max_upload_mb * 1024 * 1024
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + FORM_SLACK:
        raise BadRequest(f"The file is too large: the upload is {int(declared)} bytes and the limit is "
                         f"{rt.settings.max_upload_mb} MB (PLAYGROUND_MAX_UPLOAD_MB).", param="file", code="file_too_large")
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise BadRequest("Upload files as multipart/form-data with the fields 'file' and 'purpose'.", param="file")
    try:
        form = await request.form(max_files=1, max_fields=16)
    except MultiPartException as exc:
        raise BadRequest(f"The multipart body could not be read: {exc.message}", param="file") from None
    try:
        for key in form.keys():
            if key.startswith("expires_after"):
                raise Unsupported("expires_after is not supported by this server: uploaded files are kept until "
                                  "deleted.", param="expires_after", code="unsupported_parameter")
            if key not in ("file", "purpose"):
                raise BadRequest(f"Unrecognized request argument supplied: {key}", param=key, code="unknown_parameter")
        upload, purpose = form.get("file"), form.get("purpose")
        if not isinstance(upload, UploadFile):
            raise BadRequest("Missing required parameter: 'file' (a multipart file part).", param="file")
        if not isinstance(purpose, str) or not purpose:
            raise BadRequest("Missing required parameter: 'purpose'.", param="purpose")
        await upload.seek(0)
        # The service reads the spooled upload itself, block by block up to its limit, not all into memory.
        return await run_in_threadpool(files.create, upload.filename or "upload", upload.file, purpose)
    finally:
        await form.close()


@router.get("")
def list_files(request: Request, page: dict = Depends(page_params), rt: Runtime = Depends(get_runtime)):
    files = service(rt, "files")
    page.pop("before", None)  # OpenAI's file list pages forward only
    return files.list(purpose=request.query_params.get("purpose") or None, **page)


@router.get("/{file_id}")
def retrieve_file(file_id: str, rt: Runtime = Depends(get_runtime)):
    return service(rt, "files").get(file_id)


@router.get("/{file_id}/content")
def file_content(file_id: str, rt: Runtime = Depends(get_runtime)):
    files = service(rt, "files")
    meta = files.get(file_id)
    if hasattr(files, "path"):
        return FileResponse(files.path(file_id), media_type="application/octet-stream", filename=meta["filename"])
    return Response(files.content(file_id), media_type="application/octet-stream")


@router.delete("/{file_id}")
def delete_file(file_id: str, rt: Runtime = Depends(get_runtime)):
    return service(rt, "files").delete(file_id)
