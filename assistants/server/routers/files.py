"""/v1/files: multipart upload, list, retrieve, content, delete (over `rt.files`)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from assistants.errors import BadRequest, Unsupported
from assistants.runtime import Runtime
from assistants.server.deps import TooLarge, get_runtime, multipart_form, page_params, service

router = APIRouter(prefix="/files", tags=["files"])

FORM_SLACK = 1024 * 1024  # multipart framing and the purpose field on top of the file itself


@router.post("")
async def upload_file(request: Request, rt: Runtime = Depends(get_runtime)):
    files = service(rt, "files")
    limit = rt.settings.max_upload_mb * 1024 * 1024

    def too_large(size: int, _limit: int) -> TooLarge:
        return _too_large(rt, f"the upload is {size:,} bytes or more")

    content_type = request.headers.get("content-type", "").lower()
    if not content_type.startswith("multipart/form-data"):
        raise BadRequest("Upload files as multipart/form-data with the fields 'file' and 'purpose'.", param="file")
    # Parsed as it arrives with a running count: a chunked or lying upload stops at the limit, and the parser
    # closes (and so deletes) its spooled part when the count raises.
    form = await multipart_form(request, limit + FORM_SLACK, too_large, max_fields=16)
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
        try:
            return await run_in_threadpool(files.create, upload.filename or "upload", upload.file, purpose)
        except BadRequest as exc:
            if exc.code == "file_too_large":  # the file alone passed the limit, within the form's slack
                raise _too_large(rt, "the file alone is larger than that") from None
            raise
    finally:
        await form.close()


def _too_large(rt: Runtime, what: str) -> TooLarge:
    mb = rt.settings.max_upload_mb
    return TooLarge(f"File is too large: the upload limit is {mb} MB ({mb * 1024 * 1024:,} bytes) and {what}. "
                    "Nothing was stored. Split the file, or raise PLAYGROUND_MAX_UPLOAD_MB on the server.",
                    param="file", code="file_too_large")


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
