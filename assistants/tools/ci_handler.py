"""The code_interpreter tool: runs the model's code in the thread's sandbox session and files its outputs."""

from __future__ import annotations

import logging

from assistants.tools import BuiltinOutcome, ToolContext, empty_details
from assistants.tools.ci_outputs import WRITTEN_FIELD, OutputKeeper, delete_thread_outputs, thread_outputs
from assistants.tools.code_interpreter import CodeInterpreter, SandboxUnavailable

log = logging.getLogger(__name__)
MAX_INPUT_FILE_BYTES = 50 * 1024 * 1024
ELSEWHERE = "ran in another server process"  # which one goes to the log, not to the model


def input_file_ids(ctx: ToolContext) -> list[str]:
    """Files the code may see: the assistant's, the thread's, and message attachments meant for the tool."""
    ids: list[str] = []
    for owner in (ctx.assistant, ctx.thread):
        resources = (owner or {}).get("tool_resources") or {}
        ids.extend((resources.get("code_interpreter") or {}).get("file_ids", []))
    for att in ctx.attachments:
        if any(t.get("type") == "code_interpreter" for t in att.get("tools", [])):
            ids.append(att["file_id"])
    return list(dict.fromkeys(ids))


def file_bytes(rt, file_ids: list[str]) -> dict[str, bytes]:
    """name -> bytes of these files, later ones winning a name; gone or too large ones are left out."""
    files = {}
    for file_id in file_ids:
        meta = rt.store.get("files", file_id)
        if meta is None or rt.files is None or meta.get("bytes", 0) > MAX_INPUT_FILE_BYTES:
            continue
        files[meta["filename"]] = rt.files.content(file_id)
    return files


def written_file_ids(rt, thread_id: str) -> list[str]:
    """The files earlier code of the thread wrote (not its figures), oldest first."""
    return [f["id"] for f in thread_outputs(rt, thread_id) if f.get(WRITTEN_FIELD)]


def hold_session(rt, interpreter, thread_id: str, inputs: dict[str, bytes]) -> None:
    """Make this instance the holder of the thread's session before its code runs here.

    When another instance ran the thread's code last, its session (variables, /mnt/data) is there, not here: the
    session here starts fresh with the thread's files back in /mnt/data, and the output says so.
    """
    row = rt.store.ci_session(thread_id)
    if row is not None and row[0] == rt.engine.owner:
        return
    if row is not None:
        restore = {**file_bytes(rt, written_file_ids(rt, thread_id)), **inputs}
        log.info("thread %s: its code session was in %s; starting a fresh one here with %d files", thread_id, row[0],
                 len(restore))
        interpreter.restart(thread_id, ELSEWHERE, restore)
    rt.engine.affinity.session_used(thread_id)  # ours from now on: runs of the thread come here first


def session_memory_mb(settings, asked: int | None) -> int | None:
    """A container's memory_limit, capped by the operator: at most PLAYGROUND_CODE_MEMORY_MAX_MB (or the default
    budget, PLAYGROUND_CODE_MEMORY_MB, when that is larger); None: the default budget."""
    if not asked:
        return None
    return min(asked, max(settings.code_memory_max_mb, settings.code_memory_mb))


def register(rt) -> None:
    """Create the process's CodeInterpreter and register the tool handler on the runtime's toolbox."""
    s = rt.settings
    interpreter = CodeInterpreter(s.data_dir / "sandboxes", timeout_s=s.code_timeout_s, memory_mb=s.code_memory_mb,
                                  max_processes=s.code_max_processes, disk_quota_mb=s.code_disk_mb,
                                  max_file_mb=min(s.code_disk_mb, 100), allow_unsandboxed=s.allow_unsandboxed_code,
                                  idle_timeout_s=s.code_idle_minutes * 60,  # <= 0: never
                                  max_sessions=s.code_max_sessions, cpus=s.code_cpus)
    rt.code_interpreter = interpreter
    rt.engine.affinity.live_sessions = interpreter.live_keys
    rt.engine.affinity.end_session = interpreter.retire

    def forget_thread(thread_id: str) -> None:
        interpreter.reset(thread_id)
        delete_thread_outputs(rt, thread_id)

    rt.toolbox.thread_hooks.append(forget_thread)
    previous_close = getattr(rt, "_close_tools", None)

    def close() -> None:
        interpreter.close()
        if previous_close:
            previous_close()

    rt._close_tools = close

    def handle(arguments: dict, ctx: ToolContext) -> BuiltinOutcome:
        code = arguments.get("code")
        if not isinstance(code, str) or not code.strip():
            msg = "error: code_interpreter needs a non-empty 'code' string."
            return BuiltinOutcome(msg, empty_details("code_interpreter", arguments), error=msg)
        files = file_bytes(rt, input_file_ids(ctx))
        thread_id = ctx.thread["id"] if ctx.thread else ctx.run["thread_id"]
        try:
            hold_session(rt, interpreter, thread_id, files)
            result = interpreter.execute(thread_id, code, files=files, cancel=ctx.cancel,
                                         memory_mb=session_memory_mb(rt.settings, ctx.memory_mb))
        except SandboxUnavailable as exc:
            msg = f"error: the code interpreter cannot run code here: {exc}"
            return BuiltinOutcome(msg, {"input": code, "outputs": [{"type": "logs", "logs": msg}]}, error=msg)
        outputs: list[dict] = []
        notes: list[str] = []
        images: list[str] = []
        annotations: list[dict] = []
        keeper = OutputKeeper(rt, thread_id, s.code_output_quota_mb)
        if rt.files is not None:
            for i, png in enumerate(result.images):
                if (f := keeper.keep(f"figure-{i + 1}.png", png)) is None:
                    continue
                outputs.append({"type": "image", "image": {"file_id": f["id"]}})
                images.append(f["id"])
                notes.append(f"[a figure was produced and will be shown to the user as an image: {f['id']}]")
            for name, data in result.files:
                if (f := keeper.keep(name.rsplit("/", 1)[-1], data, written=True)) is None:
                    continue
                path = f"sandbox:/mnt/data/{name}"
                annotations.append({"type": "file_path", "text": path, "file_id": f["id"]})
                notes.append(f"[file written: {path} — link it as {path}]")
        # the run log shows the sandbox's status (e.g. no per-session cgroup here) and what was not kept
        logs = result.notice + result.logs + "".join(f"{note}\n" for note in keeper.notes)
        if logs:
            outputs.insert(0, {"type": "logs", "logs": logs})
        output = (logs or "(no output)") + ("\n" + "\n".join(notes) if notes else "")
        return BuiltinOutcome(output, {"input": code, "outputs": outputs}, error=result.error,
                              annotations=annotations, image_file_ids=images)

    rt.toolbox.register("code_interpreter", handle)
