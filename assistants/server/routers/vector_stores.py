"""/v1/vector_stores: stores, search, their files and file batches (over `rt.vector_stores`)."""

from __future__ import annotations

import inspect

from fastapi import APIRouter, Depends, Request, Response

from assistants.errors import BadRequest, Unsupported
from assistants.runtime import Runtime
from assistants.server.deps import POLL_HEADERS, call, get_runtime, json_body, only, page_params, service
from assistants.tools.file_search import ParseError, extract_text

router = APIRouter(prefix="/vector_stores", tags=["vector stores"])

CREATE_FIELDS = ("name", "description", "file_ids", "expires_after", "chunking_strategy", "metadata")
UPDATE_FIELDS = ("name", "expires_after", "metadata")
SEARCH_FIELDS = ("query", "max_num_results", "ranking_options", "filters", "rewrite_query")
FILE_FIELDS = ("file_id", "chunking_strategy", "attributes")
BATCH_FIELDS = ("file_ids", "files", "chunking_strategy", "attributes")


def _stores(rt: Runtime = Depends(get_runtime)):
    return service(rt, "vector_stores")


def _file_filter(request: Request) -> dict:
    value = request.query_params.get("filter")
    return {"filter": value} if value else {}


@router.post("")
def create_vector_store(body: dict = Depends(json_body), vs=Depends(_stores)):
    return call(vs.create, body, CREATE_FIELDS)


@router.get("")
def list_vector_stores(page: dict = Depends(page_params), vs=Depends(_stores)):
    return vs.list(**page)


@router.get("/{vector_store_id}")
def retrieve_vector_store(vector_store_id: str, response: Response, vs=Depends(_stores)):
    response.headers.update(POLL_HEADERS)
    return vs.get(vector_store_id)


@router.post("/{vector_store_id}")
def modify_vector_store(vector_store_id: str, body: dict = Depends(json_body), vs=Depends(_stores)):
    return call(vs.update, body, UPDATE_FIELDS, vector_store_id)


@router.delete("/{vector_store_id}")
def delete_vector_store(vector_store_id: str, vs=Depends(_stores)):
    return vs.delete(vector_store_id)


@router.post("/{vector_store_id}/search")
def search_vector_store(vector_store_id: str, body: dict = Depends(json_body), vs=Depends(_stores)):
    only(body, SEARCH_FIELDS)
    if "query" not in body:
        raise BadRequest("Missing required parameter: 'query'.", param="query")
    return call(vs.search, body, SEARCH_FIELDS, vector_store_id)


# -- files of a vector store -------------------------------------------------------------------
@router.post("/{vector_store_id}/files")
def create_vector_store_file(vector_store_id: str, body: dict = Depends(json_body), vs=Depends(_stores)):
    only(body, FILE_FIELDS)
    if not isinstance(body.get("file_id"), str):
        raise BadRequest("Missing required parameter: 'file_id' (a file id string).", param="file_id")
    return call(vs.add_file, body, FILE_FIELDS, vector_store_id)


@router.get("/{vector_store_id}/files")
def list_vector_store_files(vector_store_id: str, page: dict = Depends(page_params),
                            where: dict = Depends(_file_filter), vs=Depends(_stores)):
    return vs.list_files(vector_store_id, **where, **page)


@router.get("/{vector_store_id}/files/{file_id}")
def retrieve_vector_store_file(vector_store_id: str, file_id: str, response: Response, vs=Depends(_stores)):
    response.headers.update(POLL_HEADERS)
    return vs.get_file(vector_store_id, file_id)


@router.post("/{vector_store_id}/files/{file_id}")
def update_vector_store_file(vector_store_id: str, file_id: str, body: dict = Depends(json_body),
                             vs=Depends(_stores)):
    only(body, ("attributes",))
    if not hasattr(vs, "update_file"):
        raise Unsupported("Updating a vector store file's attributes is not supported by this server.",
                          param="attributes", code="unsupported_operation")
    return call(vs.update_file, body, ("attributes",), vector_store_id, file_id)


@router.get("/{vector_store_id}/files/{file_id}/content")
def vector_store_file_content(vector_store_id: str, file_id: str, vs=Depends(_stores), rt: Runtime = Depends(get_runtime)):
    if hasattr(vs, "file_content"):
        return vs.file_content(vector_store_id, file_id)
    vs.get_file(vector_store_id, file_id)  # 404 unless the file is in this store
    files = service(rt, "files")
    try:
        text = extract_text(files.get(file_id)["filename"], files.content(file_id))
    except ParseError as exc:
        raise BadRequest(f"The file's text could not be read: {exc}", param="file_id") from None
    return {"object": "vector_store.file_content.page", "data": [{"type": "text", "text": text}],
            "has_more": False, "next_page": None}


@router.delete("/{vector_store_id}/files/{file_id}")
def delete_vector_store_file(vector_store_id: str, file_id: str, vs=Depends(_stores)):
    return vs.delete_file(vector_store_id, file_id)


# -- file batches ------------------------------------------------------------------------------
@router.post("/{vector_store_id}/file_batches")
def create_file_batch(vector_store_id: str, body: dict = Depends(json_body), vs=Depends(_stores)):
    only(body, BATCH_FIELDS)
    body = _flatten_batch_files(body, vs)
    if "files" not in body and (not isinstance(body.get("file_ids"), list) or not body["file_ids"]):
        raise BadRequest("file_ids must be a non-empty list of file ids (or give 'files').", param="file_ids")
    return call(vs.create_batch, body, BATCH_FIELDS, vector_store_id)


def _flatten_batch_files(body: dict, vs) -> dict:
    """`files: [{file_id, ...}]` as `file_ids` when every entry is a bare id and the service has no `files`."""
    files = body.get("files")
    if files is None:
        return body
    if body.get("file_ids") is not None:
        raise BadRequest("Give either file_ids or files, not both.", param="files")
    if not isinstance(files, list) or not all(isinstance(f, dict) and isinstance(f.get("file_id"), str) for f in files):
        raise BadRequest("files must be a list of objects with a file_id.", param="files")
    if "files" in inspect.signature(vs.create_batch).parameters:
        return body
    if any(set(f) - {"file_id"} for f in files):
        raise Unsupported("Per-file attributes or chunking_strategy in 'files' are not supported by this server; "
                          "use file_ids with batch-wide attributes.", param="files", code="unsupported_parameter")
    rest = {k: v for k, v in body.items() if k != "files"}
    return {**rest, "file_ids": [f["file_id"] for f in files]}


@router.get("/{vector_store_id}/file_batches/{batch_id}")
def retrieve_file_batch(vector_store_id: str, batch_id: str, response: Response, vs=Depends(_stores)):
    response.headers.update(POLL_HEADERS)
    return vs.get_batch(vector_store_id, batch_id)


@router.post("/{vector_store_id}/file_batches/{batch_id}/cancel")
def cancel_file_batch(vector_store_id: str, batch_id: str, vs=Depends(_stores)):
    return vs.cancel_batch(vector_store_id, batch_id)


@router.get("/{vector_store_id}/file_batches/{batch_id}/files")
def list_file_batch_files(vector_store_id: str, batch_id: str, page: dict = Depends(page_params),
                          where: dict = Depends(_file_filter), vs=Depends(_stores)):
    return vs.list_batch_files(vector_store_id, batch_id, **where, **page)
