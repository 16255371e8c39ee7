"""/v1/threads/{thread_id}/runs/{run_id}/steps: list and retrieve, with `include[]` for file-search content."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from assistants.runtime import Runtime
from assistants.server.deps import get_runtime, includes, page_params

router = APIRouter(prefix="/threads/{thread_id}/runs/{run_id}/steps", tags=["run steps"])


@router.get("")
def list_run_steps(thread_id: str, run_id: str, page: dict = Depends(page_params),
                   include: list[str] = Depends(includes), rt: Runtime = Depends(get_runtime)):
    return rt.list_run_steps(thread_id, run_id, include=include, **page)


@router.get("/{step_id}")
def retrieve_run_step(thread_id: str, run_id: str, step_id: str, include: list[str] = Depends(includes),
                      rt: Runtime = Depends(get_runtime)):
    return rt.get_run_step(thread_id, run_id, step_id, include=include)
