"""The runtime both front doors call: assistants, threads, messages, runs and steps over one store."""

from __future__ import annotations

import base64
import logging
import threading
from typing import Any

from assistants import validation as v
from assistants.config import Settings, load_settings
from assistants.errors import APIError, BadRequest, not_found
from assistants.ids import new_id, now
from assistants.messages import attachments as check_attachments
from assistants.messages import content_blocks
from assistants.providers.router import ModelRouter
from assistants.runs.engine import TERMINAL, Engine, public
from assistants.runs.events import Subscription
from assistants.runs.extras import RunExtras
from assistants.runs.extras import checked as checked_extras
from assistants.runs.sweeper import Sweeper
from assistants.shared_settings import SettingsWatch, import_settings_file, settings_from_database
from assistants.store import IntegrityError, Store, open_store
from assistants.tools import ToolBox

log = logging.getLogger(__name__)

ASSISTANT_FIELDS = {"model", "name", "description", "instructions", "tools", "tool_resources", "metadata",
                    "temperature", "top_p", "response_format", "reasoning_effort"}
RUN_FIELDS = {"assistant_id", "model", "instructions", "additional_instructions", "additional_messages", "tools",
              "metadata", "temperature", "top_p", "stream", "max_prompt_tokens", "max_completion_tokens",
              "truncation_strategy", "tool_choice", "parallel_tool_calls", "response_format", "include",
              "reasoning_effort"}

# image_file content goes to the model as a data URL when the bytes are one of these formats (OpenAI's list).
IMAGE_MAGIC = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"GIF87a", "image/gif"),
               (b"GIF89a", "image/gif"), (b"RIFF", "image/webp"))
MAX_IMAGE_BYTES = 20 * 1024 * 1024


def list_every(list_fn, **kwargs) -> list[dict]:
    """Every item of one of the runtime's paged lists (rt.list_assistants, rt.list_runs, rt.files.list…), newest first."""
    items, after = [], None
    while True:
        page = list_fn(limit=100, order="desc", after=after, **kwargs)
        items.extend(page["data"])
        if not page["has_more"]:
            return items
        after = page["last_id"]


def _reject_unknown(body: dict, allowed: set[str]) -> None:
    for key in body:
        if key not in allowed:
            raise BadRequest(f"Unrecognized request argument supplied: {key}", param=key, code="unknown_parameter")


class Runtime:
    """One per process: the store, the model router, the tools and the run engine."""

    def __init__(self, settings: Settings | None = None, *, router: ModelRouter | None = None,
                 toolbox: ToolBox | None = None, store: Store | None = None):
        self.settings = settings or load_settings()
        self.store = store or open_store(self.settings)
        import_settings_file(self.store, self.settings.settings_file)  # an older version's settings.json, once
        self._reload_lock = threading.Lock()
        # Settings saved on the Settings page of any instance sharing the database apply here: they are read now
        # and watched, unless the caller gave its own router (tests, benchmarks).
        self._settings_watch = SettingsWatch(self.store, self.reload_settings) if router is None else None
        if self._settings_watch is not None and self._settings_watch.seen:
            self.settings = settings_from_database(self.store, self.settings)[1]
        self.router = router or ModelRouter.from_settings(self.settings)
        self.toolbox = toolbox or ToolBox()
        self.engine = Engine(self.store, self.router, self.toolbox, workers=self.settings.run_workers,
                             max_tool_rounds=self.settings.max_tool_rounds, run_expires_s=self.settings.run_expires_s,
                             lease_s=self.settings.run_lease_s, affinity_s=self.settings.code_affinity_s)
        self.files = None
        self.vector_stores = None
        self._attach_tools()
        self.sweeper = Sweeper(self.engine, on_tick=self._settings_watch and self._settings_watch.tick)
        self.swept = self.sweep_orphaned_runs()
        self.sweeper.start()

    def _attach_tools(self) -> None:
        """Files, vector stores and the built-in tools, when their modules are installed."""
        try:
            from assistants.tools.setup import attach
        except ImportError:
            return
        attach(self)
        if self.files is not None and self.engine.image_loader is None:
            self.engine.image_loader = self._image_data_url

    def _image_data_url(self, file_id: str) -> str | None:
        """An uploaded image (image_file content) as the data URL a vision model reads; None if gone or not an image."""
        try:
            meta = self.files.get(file_id)
            if meta.get("bytes", 0) > MAX_IMAGE_BYTES:
                return None
            data = self.files.content(file_id)
        except APIError:
            return None
        mime = next((m for magic, m in IMAGE_MAGIC if data.startswith(magic)), None)
        if mime == "image/webp" and data[8:12] != b"WEBP":
            mime = None
        return f"data:{mime};base64,{base64.b64encode(data).decode()}" if mime else None

    def reload_settings(self, settings: Settings | None = None) -> None:
        """Re-read the saved settings (another instance saved, or this one) and rebuild the model router in place."""
        from dataclasses import replace

        with self._reload_lock:  # one at a time, each reading the newest: the last to finish applies the newest
            if settings is None:
                version, settings = settings_from_database(self.store, self.settings)
                if self._settings_watch is not None:
                    self._settings_watch.applied(version)
            settings = replace(settings, database_url=self.settings.database_url)  # the store in use stays in use
            # The router first, then both at once: a reader never sees new settings beside the old router.
            router = ModelRouter.from_settings(settings)
            self.settings, self.router = settings, router
            self.engine.router = router

    def saved_settings(self) -> dict:
        """The Settings page's document as saved in the database (it holds keys: for that page only, never an API)."""
        return self.store.settings_document()[1]

    def save_settings(self, values: dict) -> None:
        """Save the Settings page's document for every instance sharing the database, and apply it here now."""
        self.store.save_settings_document(values)
        self.reload_settings()

    def close(self) -> None:
        self.sweeper.stop()
        self.engine.shutdown()
        try:
            self.engine.affinity.close()
        except Exception:  # the database is gone: our sessions' heartbeat lapses on its own
            log.debug("could not mark this instance's code sessions ended", exc_info=True)
        for service in (self.vector_stores, self.files):
            if service is not None and hasattr(service, "close"):
                service.close()
        closer = getattr(self, "_close_tools", None)
        if closer:
            closer()
        self.store.close()

    # -- start-up --------------------------------------------------------------------------
    def sweep_orphaned_runs(self) -> int:
        """End runs whose lease ran out (their process died) and waiting runs past `expires_at`."""
        return self.sweeper.sweep()

    # -- assistants ----------------------------------------------------------------------------
    def _assistant_fields(self, body: dict, creating: bool) -> dict:
        out: dict = {}
        if creating or "model" in body:
            model = v.string(body.get("model"), "model", 256, required=True)
            out["model"] = model
        if "name" in body:
            out["name"] = v.string(body["name"], "name", 256)
        if "description" in body:
            out["description"] = v.string(body["description"], "description", 512)
        if "instructions" in body:
            out["instructions"] = v.string(body["instructions"], "instructions", 256_000)
        if creating or "tools" in body:
            out["tools"] = v.tools(body.get("tools"))
        if creating or "tool_resources" in body:
            out["tool_resources"] = v.tool_resources(body.get("tool_resources")) or {}
        if creating or "metadata" in body:
            out["metadata"] = v.metadata(body.get("metadata"))
        if creating or "temperature" in body:
            t = v.number(body.get("temperature"), "temperature", 0, 2)
            out["temperature"] = 1.0 if t is None else t
        if creating or "top_p" in body:
            p = v.number(body.get("top_p"), "top_p", 0, 1)
            out["top_p"] = 1.0 if p is None else p
        if creating or "response_format" in body:
            out["response_format"] = v.response_format(body.get("response_format"))
        return out

    def create_assistant(self, **body: Any) -> dict:
        _reject_unknown(body, ASSISTANT_FIELDS)
        fields = self._assistant_fields(body, creating=True)
        self._check_tool_resources(fields.get("tool_resources"))
        assistant = {"id": new_id("asst"), "object": "assistant", "created_at": now(), "name": None,
                     "description": None, "instructions": None, **fields}
        return self.store.insert("assistants", assistant)

    def get_assistant(self, assistant_id: str) -> dict:
        obj = self.store.get("assistants", assistant_id)
        if obj is None:
            raise not_found("assistant", assistant_id)
        return obj

    def update_assistant(self, assistant_id: str, **body: Any) -> dict:
        _reject_unknown(body, ASSISTANT_FIELDS)
        fields = self._assistant_fields(body, creating=False)
        self._check_tool_resources(fields.get("tool_resources"))
        with self.store.write():
            obj = self.get_assistant(assistant_id)
            obj.update(fields)
            return self.store.put("assistants", obj)

    def delete_assistant(self, assistant_id: str) -> dict:
        if not self.store.delete("assistants", assistant_id):
            raise not_found("assistant", assistant_id)
        return {"id": assistant_id, "object": "assistant.deleted", "deleted": True}

    def list_assistants(self, **page: Any) -> dict:
        return self.store.page("assistants", **page)

    def _check_tool_resources(self, resources: dict | None) -> None:
        if not resources:
            return
        for file_id in (resources.get("code_interpreter") or {}).get("file_ids", []):
            if self.files is not None and self.store.get("files", file_id) is None:
                raise BadRequest(f"File '{file_id}' in tool_resources.code_interpreter.file_ids does not exist.",
                                 param="tool_resources.code_interpreter.file_ids")
        for vs_id in (resources.get("file_search") or {}).get("vector_store_ids", []):
            if self.store.get("vector_stores", vs_id) is None:
                raise BadRequest(f"Vector store '{vs_id}' in tool_resources.file_search.vector_store_ids does not exist.",
                                 param="tool_resources.file_search.vector_store_ids")

    # -- threads -------------------------------------------------------------------------------
    def create_thread(self, *, messages: list | None = None, tool_resources: dict | None = None,
                      metadata: dict | None = None, conversation: bool = False) -> dict:
        """`conversation`: made by the Responses API's conversations.create, so the Threads page labels it so from
        the start (kept in the private `_conversation`, never shown through the API)."""
        resources = v.tool_resources(tool_resources) or {}
        resources = self._materialise_vector_stores(resources)
        self._check_tool_resources(resources)
        if messages is not None and not isinstance(messages, list):
            raise BadRequest("messages must be a list of messages.", param="messages")
        thread = {"id": new_id("thread"), "object": "thread", "created_at": now(),
                  "metadata": v.metadata(metadata), "tool_resources": resources,
                  **({"_conversation": True} if conversation else {})}
        prepared = [self._new_message(thread["id"], m, f"messages[{i}]") for i, m in enumerate(messages or [])]
        with self.store.write():
            self.store.insert("threads", thread)
            for msg in prepared:
                self.store.insert("messages", msg)
        for msg in prepared:
            self._on_new_message(thread, msg)
        return self.get_thread(thread["id"]) if prepared else public(thread)  # attachments may have added resources

    def _materialise_vector_stores(self, resources: dict) -> dict:
        """`tool_resources.file_search.vector_stores` (inline file lists) become real vector stores."""
        fs = resources.get("file_search") or {}
        inline = fs.pop("vector_stores", None)
        if inline and self.vector_stores is not None:
            ids = list(fs.get("vector_store_ids", []))
            for spec in inline:
                vs = self.vector_stores.create(file_ids=spec.get("file_ids", []), metadata=spec.get("metadata"),
                                               chunking_strategy=spec.get("chunking_strategy"))
                ids.append(vs["id"])
            fs["vector_store_ids"] = ids
        return resources

    def get_thread(self, thread_id: str) -> dict:
        return public(self._stored_thread(thread_id))

    def _stored_thread(self, thread_id: str) -> dict:
        """The thread as stored, private fields included."""
        obj = self.store.get("threads", thread_id)
        if obj is None:
            raise not_found("thread", thread_id)
        return obj

    def update_thread(self, thread_id: str, *, metadata: dict | None = None, tool_resources: dict | None = None) -> dict:
        md = v.metadata(metadata) if metadata is not None else None
        resources = v.tool_resources(tool_resources) if tool_resources is not None else None
        self._check_tool_resources(resources)
        with self.store.write():
            thread = self._stored_thread(thread_id)
            if md is not None:
                thread["metadata"] = md
            if resources is not None:
                thread["tool_resources"] = resources
            return public(self.store.put("threads", thread))

    def delete_thread(self, thread_id: str) -> dict:
        self.get_thread(thread_id)
        # Messages, runs, steps, model calls and events go with it (foreign keys). A run executing in another
        # process sees its row gone at the next sweeper tick and stops.
        self.store.delete_thread(thread_id)
        present = self.store.run_statuses(self.engine.working())
        for run_id in self.engine.working():
            if run_id not in present:
                self.engine.signal_cancel(run_id)
        interpreter = getattr(self, "code_interpreter", None)
        if interpreter is not None:
            interpreter.reset(thread_id)  # its sandbox session (variables, files) goes with the thread
        self.toolbox.thread_deleted(thread_id)
        return {"id": thread_id, "object": "thread.deleted", "deleted": True}

    def list_threads(self, **page: Any) -> dict:
        """Not in OpenAI's API (it had no thread listing); the Playground's Threads page uses it."""
        listed = self.store.page("threads", **page)
        return {**listed, "data": [public(t) for t in listed["data"]]}

    # -- messages ------------------------------------------------------------------------------
    def _new_message(self, thread_id: str, body: Any, param: str = "") -> dict:
        if not isinstance(body, dict):
            raise BadRequest(f"{param or 'message'} must be an object with role and content.", param=param or None)
        prefix = f"{param}." if param else ""
        _reject_unknown(body, {"role", "content", "attachments", "metadata"})
        role = body.get("role")
        if role not in ("user", "assistant"):
            raise BadRequest(f"{prefix}role must be 'user' or 'assistant'.", param=f"{prefix}role")
        files = check_attachments(body.get("attachments"), f"{prefix}attachments")
        for att in files or []:
            if self.files is not None and self.store.get("files", att["file_id"]) is None:
                raise BadRequest(f"Attached file '{att['file_id']}' does not exist.", param=f"{prefix}attachments")
        content = content_blocks(body.get("content"), f"{prefix}content")
        for i, block in enumerate(content):
            image = block.get("image_file")
            if image and self.files is not None and self.store.get("files", image["file_id"]) is None:
                raise BadRequest(f"The image file '{image['file_id']}' in {prefix}content[{i}] does not exist; upload "
                                 "it first (purpose 'vision').", param=f"{prefix}content[{i}].image_file.file_id")
        return {
            "id": new_id("msg"), "object": "thread.message", "created_at": now(), "thread_id": thread_id,
            "role": role, "content": content,
            "assistant_id": None, "run_id": None, "attachments": files, "metadata": v.metadata(body.get("metadata"),
                                                                                                 f"{prefix}metadata"),
            "status": "completed", "completed_at": now(),
            "incomplete_at": None, "incomplete_details": None,
        }

    def _on_new_message(self, thread: dict, message: dict) -> None:
        """File-search attachments go into the thread's vector store, as OpenAI does."""
        hook = getattr(self, "_attachment_hook", None)
        if hook and message.get("attachments"):
            hook(thread, message)

    def create_message(self, thread_id: str, **body: Any) -> dict:
        with self.store.write(thread_id):  # reads and writes only this thread's objects
            thread, active = self.store.thread_with_active_run(thread_id)  # with BEGIN: one round trip
            if thread is None:
                raise not_found("thread", thread_id)
            message = self._new_message(thread_id, body)
            active = None if active is None else self._expire_if_due(active)
            if active is not None:
                raise BadRequest(f"Can't add messages to {thread_id} while a run {active['id']} is active "
                                 f"(status {active['status']}). Wait for it to finish or cancel it.", code="run_active")
            self.store.insert("messages", message)  # sent with the COMMIT
        self._on_new_message(public(thread), message)
        return message

    def get_message(self, thread_id: str, message_id: str) -> dict:
        obj = self.store.get("messages", message_id, thread_id=thread_id)
        if obj is None:
            raise not_found("message", message_id)
        return obj

    def update_message(self, thread_id: str, message_id: str, *, metadata: dict | None = None) -> dict:
        md = v.metadata(metadata) if metadata is not None else None
        self.get_message(thread_id, message_id)
        if md is not None:  # an update without metadata keeps what is there; only that field is written
            self.store.update_fields("messages", message_id, {"metadata": md}, thread_id=thread_id)
        return self.get_message(thread_id, message_id)

    def delete_message(self, thread_id: str, message_id: str) -> dict:
        self.get_message(thread_id, message_id)
        self.store.delete("messages", message_id, thread_id=thread_id)
        return {"id": message_id, "object": "thread.message.deleted", "deleted": True}

    def list_messages(self, thread_id: str, *, run_id: str | None = None, **page: Any) -> dict:
        self.get_thread(thread_id)
        return self.store.page("messages", thread_id=thread_id, run_id=run_id, **page)

    # -- runs ----------------------------------------------------------------------------------
    def _active_run(self, thread_id: str) -> dict | None:
        run = self.store.active_run(thread_id)
        return None if run is None else self._expire_if_due(run)

    def _expire_if_due(self, run: dict) -> dict | None:
        """A waiting run past `expires_at` ends `expired` when anyone looks (the sweeper does it too)."""
        if run["status"] in ("requires_action", "queued") and run.get("expires_at") and run["expires_at"] < now():
            self.engine.status.expire(run["id"])
            current = self.store.get("runs", run["id"])
            return None if current is None or current["status"] in TERMINAL else current
        return run

    def _build_run(self, thread_id: str, body: dict, read: dict | None = None) -> tuple[dict, list[dict]]:
        """The new run from the request (`read`: the assistant if the caller has read it already)."""
        _reject_unknown(body, RUN_FIELDS)
        assistant_id = v.string(body.get("assistant_id"), "assistant_id", 128, required=True)
        assistant = read if read is not None and read["id"] == assistant_id else self.get_assistant(assistant_id)
        model = v.string(body.get("model"), "model", 256) or assistant["model"]
        self.router.resolve(model)  # an unknown model is a 400 now, not a failed run later
        tools = v.tools(body["tools"]) if body.get("tools") is not None else assistant["tools"]
        extra = [self._new_message(thread_id, m, f"additional_messages[{i}]")
                 for i, m in enumerate(body.get("additional_messages") or [])]
        temperature = v.number(body.get("temperature"), "temperature", 0, 2)
        top_p = v.number(body.get("top_p"), "top_p", 0, 1)
        choice = v.tool_choice(body.get("tool_choice"))
        if isinstance(choice, dict):
            wanted = choice.get("function", {}).get("name") if choice["type"] == "function" else choice["type"]
            names = {t["function"]["name"] if t["type"] == "function" else t["type"] for t in tools}
            if wanted not in names:
                raise BadRequest(f"tool_choice names '{wanted}', which is not one of this run's tools.", param="tool_choice")
        created = now()
        run = {
            "id": new_id("run"), "object": "thread.run", "created_at": created, "thread_id": thread_id,
            "assistant_id": assistant_id, "status": "queued", "required_action": None, "last_error": None,
            "expires_at": created + self.settings.run_expires_s, "started_at": None, "cancelled_at": None,
            "failed_at": None, "completed_at": None, "incomplete_details": None, "model": model,
            "instructions": v.string(body.get("instructions"), "instructions", 256_000) or assistant.get("instructions") or "",
            "tools": tools, "metadata": v.metadata(body.get("metadata")), "usage": None,
            "temperature": assistant.get("temperature", 1.0) if temperature is None else temperature,
            "top_p": assistant.get("top_p", 1.0) if top_p is None else top_p,
            "max_prompt_tokens": v.positive_int(body.get("max_prompt_tokens"), "max_prompt_tokens", 256),
            "max_completion_tokens": v.positive_int(body.get("max_completion_tokens"), "max_completion_tokens", 16),
            "truncation_strategy": v.truncation_strategy(body.get("truncation_strategy")),
            "response_format": v.response_format(body["response_format"]) if body.get("response_format") is not None
            else assistant.get("response_format", "auto"),
            "tool_choice": choice or "auto",
            "parallel_tool_calls": True if body.get("parallel_tool_calls") is None else bool(body["parallel_tool_calls"]),
            "_additional_instructions": v.string(body.get("additional_instructions"), "additional_instructions", 256_000),
            "_owner": self.engine.owner, "_lease_until": self.engine.status.lease_until(),
        }
        return run, extra

    def _insert_run(self, thread_id: str, run: dict, extra: list[dict], first: tuple[str, dict] | None = None) -> None:
        """Insert the run (queued, reserved by this process) with its first events, in one transaction.

        One active run per thread is the database's rule (the partial unique index runs_one_active), so the insert
        is tried first (on PostgreSQL it goes with the COMMIT: one round trip) and the active run is looked at only
        when the rule refuses it: a waiting run past its expiry then ends `expired` and the insert is tried again.
        """
        for attempt in (1, 2):
            try:
                with self.store.write(thread_id):  # reads and writes only this thread's objects
                    for msg in extra:
                        self.store.insert("messages", msg)
                    self.store.insert("runs", run)
                    if first:
                        self.engine.hub.publish(run["id"], *first)
                    self.engine.publish(run["id"], "thread.run.created", run)
                    self.engine.publish(run["id"], "thread.run.queued", run)
                return
            except IntegrityError:
                thread, active = self.store.thread_with_active_run(thread_id)
                if thread is None:
                    raise not_found("thread", thread_id) from None  # deleted meanwhile
                if active is None:
                    raise
                active = self._expire_if_due(active)
                if active is None and attempt == 1:
                    continue  # it had expired: the thread is free now
                detail = f" {active['id']} (status {active['status']})" if active is not None else ""
                raise BadRequest(f"Thread {thread_id} already has an active run{detail}. Wait for it to finish or "
                                 "cancel it.", code="run_active") from None

    def create_run(self, thread_id: str, *, stream: bool = False, extras: RunExtras | None = None,
                   **body: Any) -> dict | Subscription:
        """Queue a run; with stream=True return its event subscription (starting with thread.run.created).

        `extras` are settings only in-process callers give (see runs/extras.py); a request body cannot.
        """
        extras = checked_extras(extras)
        named = body.get("assistant_id")
        thread, assistant = self.store.get_each([("threads", thread_id),
                                                 ("assistants", named if isinstance(named, str) else "")])
        if thread is None:
            raise not_found("thread", thread_id)
        run, extra = self._build_run(thread_id, body, assistant)
        if extras is not None:
            run.update(extras.fields())
        self._insert_run(thread_id, run, extra)
        return self._launch(run, stream)

    def _launch(self, run: dict, stream: bool) -> dict | Subscription:
        sub = self.engine.hub.subscribe(run["id"], after=0) if stream else None
        self.engine.launch(run)
        return sub if stream else public(run)

    def create_thread_and_run(self, *, thread: dict | None = None, stream: bool = False, **body: Any) -> dict | Subscription:
        body.pop("tool_resources", None) if body.get("tool_resources") is None else None
        resources = body.pop("tool_resources", None)
        run_body = dict(body)
        if thread is not None and not isinstance(thread, dict):
            raise BadRequest("thread must be an object with messages, tool_resources and metadata.", param="thread")
        thread_body = dict(thread or {})
        _reject_unknown(thread_body, {"messages", "tool_resources", "metadata"})
        # Validate the run before creating anything, so a bad request leaves no empty thread behind.
        self._build_run("thread_probe", run_body)
        if resources:
            # Run-level resources serve the assistant's tools for this thread: merge them into it.
            merged = v.tool_resources(thread_body.get("tool_resources")) or {}
            for tool, entry in (v.tool_resources(resources) or {}).items():
                key = "file_ids" if tool == "code_interpreter" else "vector_store_ids"
                current = merged.setdefault(tool, {key: []})
                current[key] = list(dict.fromkeys(current.get(key, []) + entry.get(key, [])))
            thread_body["tool_resources"] = merged
        new_thread = self.create_thread(**thread_body)
        run, extra = self._build_run(new_thread["id"], run_body)
        self._insert_run(new_thread["id"], run, extra, ("thread.created", new_thread))
        return self._launch(run, stream)

    def get_run(self, thread_id: str, run_id: str) -> dict:
        run = self.store.get("runs", run_id, thread_id=thread_id)
        if run is None:
            raise not_found("run", run_id)
        return public(self._as_now(run))

    def _as_now(self, run: dict) -> dict:
        """A run just read, ended first if it waited past its expiry (then as stored after that)."""
        if run["status"] in ("requires_action", "queued"):
            return self._expire_if_due(run) or self.store.get("runs", run["id"]) or run
        return run

    def watch_run(self, thread_id: str, run_id: str, statuses: tuple[str, ...]) -> tuple[dict, Subscription | None]:
        """The run, and while its status is one of `statuses` a subscription to its events from the moment it was
        read (one read: the run and its newest event come from one statement, so no change slips between)."""
        run, seq = self.store.run_with_seq(run_id, thread_id)
        if run is None:
            raise not_found("run", run_id)
        run = self._as_now(run)
        if run["status"] not in statuses:
            return public(run), None
        return public(run), self.engine.hub.subscribe(run_id, after=seq)

    def list_runs(self, thread_id: str, **page: Any) -> dict:
        self.get_thread(thread_id)
        result = self.store.page("runs", thread_id=thread_id, **page)
        result["data"] = [public(r) for r in result["data"]]
        return result

    def update_run(self, thread_id: str, run_id: str, *, metadata: dict | None = None) -> dict:
        md = v.metadata(metadata) if metadata is not None else None
        if md is not None:
            self.store.update_fields("runs", run_id, {"metadata": md}, thread_id=thread_id)
        return self.get_run(thread_id, run_id)

    def cancel_run(self, thread_id: str, run_id: str) -> dict:
        run = self.store.get("runs", run_id, thread_id=thread_id)
        if run is None:
            raise not_found("run", run_id)
        cancelled = self.engine.status.request_cancel(run_id)
        if cancelled is None:
            status = (self.store.get("runs", run_id) or run)["status"]
            raise BadRequest(f"Cannot cancel run with status '{status}'.", param="run_id")
        self.engine.signal_cancel(run_id)  # this process's worker stops at once; another's at its sweeper's tick
        return public(cancelled)

    def submit_tool_outputs(self, thread_id: str, run_id: str, *, tool_outputs: Any, stream: bool = False) -> dict | Subscription:
        run = self.store.get("runs", run_id, thread_id=thread_id)
        if run is None:
            raise not_found("run", run_id)
        if run["status"] != "requires_action" or self._expire_if_due(run) is None:
            status = (self.store.get("runs", run_id) or run)["status"]
            raise BadRequest(f"Runs in status '{status}' do not accept tool outputs; only a run that requires_action does.",
                             param="run_id")
        if not isinstance(tool_outputs, list):
            raise BadRequest("tool_outputs must be a list of {tool_call_id, output}.", param="tool_outputs")
        pending = {c["id"] for c in run["required_action"]["submit_tool_outputs"]["tool_calls"]}
        outputs: dict[str, str] = {}
        for i, item in enumerate(tool_outputs):
            if not isinstance(item, dict) or not isinstance(item.get("tool_call_id"), str):
                raise BadRequest(f"tool_outputs[{i}].tool_call_id is required.", param=f"tool_outputs[{i}].tool_call_id")
            call_id = item["tool_call_id"]
            if call_id not in pending:
                raise BadRequest(f"tool_outputs[{i}]: '{call_id}' is not one of the run's pending tool calls "
                                 f"({', '.join(sorted(pending))}).", param=f"tool_outputs[{i}].tool_call_id")
            output = item.get("output", "")
            if not isinstance(output, str):
                raise BadRequest(f"tool_outputs[{i}].output must be a string.", param=f"tool_outputs[{i}].output")
            outputs[call_id] = output
        missing = pending - set(outputs)
        if missing:
            raise BadRequest("Expected tool outputs for call ids " + ", ".join(sorted(pending)) + "; missing: "
                             + ", ".join(sorted(missing)) + ".", param="tool_outputs")
        sub = self.engine.hub.subscribe(run_id) if stream else None  # from now on: the rest of the run

        def attach(_run: dict) -> None:
            for step in self.store.all("run_steps", run_id=run_id):
                if step["type"] != "tool_calls" or step["status"] != "in_progress":
                    continue
                for entry in step["step_details"]["tool_calls"]:
                    if entry["id"] in outputs and entry["type"] == "function":
                        entry["function"]["output"] = outputs[entry["id"]]
                        step["_outputs"][entry["id"]] = outputs[entry["id"]]
                self.store.update_fields("run_steps", step["id"], {"step_details": step["step_details"],
                                                                   "_outputs": step["_outputs"]})
                self.engine.status.move_step(step, "completed", completed_at=now())

        # The compare-and-set requires_action -> queued: of concurrent submitters exactly one is accepted.
        run = self.engine.status.requeue_with_outputs(run_id, attach)
        if run is None:
            if sub is not None:
                sub.close()
            status = (self.store.get("runs", run_id) or {"status": "deleted"})["status"]
            raise BadRequest(f"Runs in status '{status}' do not accept tool outputs; only a run that requires_action does.",
                             param="run_id")
        self.engine.launch(run)
        return sub if stream else public(run)

    # -- steps and the log ---------------------------------------------------------------------
    def list_run_steps(self, thread_id: str, run_id: str, *, include: list[str] | None = None, **page: Any) -> dict:
        self.get_run(thread_id, run_id)
        result = self.store.page("run_steps", run_id=run_id, thread_id=thread_id, **page)
        result["data"] = [self._step_view(s, include) for s in result["data"]]
        return result

    def get_run_step(self, thread_id: str, run_id: str, step_id: str, *, include: list[str] | None = None) -> dict:
        step = self.store.get("run_steps", step_id, run_id=run_id, thread_id=thread_id)
        if step is None:
            raise not_found("run step", step_id)
        return self._step_view(step, include)

    @staticmethod
    def _step_view(step: dict, include: list[str] | None) -> dict:
        """Public step; file-search chunk text only when asked for, as OpenAI does."""
        out = public(step)
        want_content = bool(include) and any("file_search.results[*].content" in i for i in include)
        if out["type"] == "tool_calls" and not want_content:
            for call in out["step_details"]["tool_calls"]:
                if call["type"] == "file_search":
                    for r in call["file_search"].get("results", []):
                        r.pop("content", None)
        return out

    def model_calls(self, run_id: str) -> list[dict]:
        """Every request sent to the model for a run, with the response received (the Playground's log)."""
        return self.store.all("model_calls", run_id=run_id)

    def list_models(self, refresh: bool = False) -> list[dict]:
        """Every backend's models (local ones with size_bytes, context_length, usable, error), then the aliases."""
        models = []
        for status in self.router.catalog(refresh):
            models.extend({"id": m, "object": "model", "created": 0, "owned_by": status.name, **status.details.get(m, {})}
                          for m in status.models)
        for alias, target in self.router.aliases.items():
            models.append({"id": alias, "object": "model", "created": 0, "owned_by": f"alias of {target}"})
        return models
