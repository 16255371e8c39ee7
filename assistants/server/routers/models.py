"""/v1/models: every backend's models and the aliases."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from assistants.errors import Unsupported, not_found
from assistants.runtime import Runtime
from assistants.server.deps import get_runtime

router = APIRouter(prefix="/models", tags=["models"])


@router.get("")
def list_models(rt: Runtime = Depends(get_runtime)):
    return {"object": "list", "data": rt.list_models()}


@router.get("/{model:path}")
def retrieve_model(model: str, rt: Runtime = Depends(get_runtime)):
    for entry in rt.list_models():
        if entry["id"] == model:
            return entry
    raise not_found("model", model, param="model")


@router.delete("/{model:path}")
def delete_model(model: str):
    raise Unsupported(f"Deleting models is not supported by this server ('{model}' is served by a configured "
                      "backend; remove it there).", param="model", code="unsupported_operation")
