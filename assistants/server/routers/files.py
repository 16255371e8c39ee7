"""/v1/files: multipart upload, list, retrieve, content, delete (over `rt.files`)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from assistants.errors import BadRequest, Unsupported
from assistants.runtime import Runtime
from assistants.server.deps import TooLarge, get_runtime, page_params, service
from assistants.server.uploads import download, receive_upload

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
    # The file part goes into storage as it arrives, counted; a chunked or lying upload stops at the limit,
    # and anything short of `finish` leaves nothing stored.
    try:
        form = await receive_upload(request, files.begin_upload, limit + FORM_SLACK, too_large, max_fields=16)
    except BadRequest as exc:
        if exc.code == "file_too_large":  # the file alone passed the limit, within the form's slack
            raise _too_large(rt, "the file alone is larger than that") from None
        raise
    try:
        for key in form.keys():
            if key.startswith("expires_after"):
                raise Unsupported("expires_after is not supported by this server: uploaded files are kept until "
                                  "deleted.", param="expires_after", code="unsupported_parameter")
            if key not in ("file", "purpose"):
                raise BadRequest(f"Unrecognized request argument supplied: {key}", param=key, code="unknown_parameter")
        purpose = form.fields.get("purpose")
        if form.upload is None:
            raise BadRequest("Missing required parameter: 'file' (a multipart file part).", param="file")
        if not isinstance(purpose, str) or not purpose:
            raise BadRequest("Missing required parameter: 'purpose'.", param="purpose")
        return await run_in_threadpool(form.upload.finish, purpose)
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
    return download(files.chunks(file_id, meta), meta["bytes"], meta["filename"])


@router.delete("/{file_id}")
def delete_file(file_id: str, rt: Runtime = Depends(get_runtime)):
    return service(rt, "files").delete(file_id)
