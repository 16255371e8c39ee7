"""The model worker process: `python -m assistants.providers.model_worker` loads one GGUF and answers chats over pipes."""

# Protocol, one JSON object a line. The parent's first line is {"op": "load", "path", "n_ctx", "n_threads"}; the
# worker answers {"event": "ready", "info": {...}} or {"event": "error", "message"} and exits. Then {"op": "chat",
# "id", "request"} streams {"id", "event": "text", "text"} lines and ends with "done" (with "result"), "error" or
# "cancelled"; {"op": "cancel", "id"} stops it between two tokens. End of input ends the worker at once.

from __future__ import annotations

import json
import os
import queue
import resource
import sys
import threading
from dataclasses import asdict


def _protocol_out():
    """A private copy of stdout for the protocol; fd 1 then points at stderr, so native prints cannot corrupt it."""
    fd = os.dup(1)
    os.dup2(2, 1)
    return os.fdopen(fd, "w", encoding="utf-8", buffering=1)


def amx_compiled(llama_cpp) -> bool:
    """Whether this llama.cpp build carries AMX kernels (a -march=native build on an AMX CPU)."""
    return "AMX_INT8 = 1" in llama_cpp.llama_print_system_info().decode("utf-8", "ignore")


def load(path: str, n_ctx: int, n_threads: int):
    """Load the model; with an AMX build, without the extra buffer types that route matmuls to AMX."""
    # A native build on a CPU that lists AMX puts weights in AMX buffers and crashes (SIGILL/SIGSEGV) on the first
    # token wherever the kernel or hypervisor does not really run AMX tiles (many cloud VMs). requirements.txt
    # builds without AMX; this covers a native wheel built earlier (pip's cache ignores build flags) or by hand.
    import llama_cpp

    safe = not amx_compiled(llama_cpp)
    if not safe:
        defaults = llama_cpp.llama_cpp.llama_model_default_params

        def without_extra_bufts():
            params = defaults()
            params.use_extra_bufts = False
            return params

        # Llama() takes no use_extra_bufts argument; it starts from these defaults.
        llama_cpp.llama_cpp.llama_model_default_params = without_extra_bufts
    kwargs = {"n_threads": n_threads} if n_threads else {}
    llama = llama_cpp.Llama(model_path=path, n_ctx=n_ctx, verbose=False, **kwargs)
    info = {"pid": os.getpid(), "n_ctx": n_ctx, "use_extra_bufts": bool(llama.model_params.use_extra_bufts),
            "amx_compiled": not safe, "llama_cpp_version": llama_cpp.__version__,
            "chat_template": bool(llama.metadata.get("tokenizer.chat_template"))}
    return llama, info


class Worker:
    """Generates on the main thread; a reader thread takes commands and cancels."""

    # The main thread loaded the model and owns llama.cpp's OpenMP thread pool; a new thread per chat would build a
    # new pool each time (that cost runs 30% longer on two cores).

    def __init__(self, out):
        self.out = out
        self.write_lock = threading.Lock()
        self.chat = None
        self.cancels: dict[int, threading.Event] = {}
        self.chats: queue.Queue = queue.Queue()

    def send(self, message: dict) -> None:
        line = json.dumps(message, ensure_ascii=False)
        with self.write_lock:
            self.out.write(line + "\n")

    def run(self) -> None:
        first = json.loads(sys.stdin.readline() or "{}")
        try:
            llama, info = load(first["path"], int(first["n_ctx"]), int(first.get("n_threads") or 0))
        except Exception as exc:
            self.send({"event": "error", "message": f"{type(exc).__name__}: {exc}"})
            return
        from assistants.providers.llama_chat import LlamaChat

        self.chat = LlamaChat(llama, int(first["n_ctx"]))
        threading.Thread(target=self.read_commands, daemon=True, name="commands").start()
        self.send({"event": "ready", "info": info})
        while True:
            self.generate(self.chats.get())

    def read_commands(self) -> None:
        for line in sys.stdin:
            command = json.loads(line)
            if command["op"] == "cancel":
                event = self.cancels.get(command["id"])
                if event is not None:
                    event.set()
            elif command["op"] == "chat":
                self.cancels[command["id"]] = threading.Event()
                self.chats.put(command)
        # End of input: the parent closed the pipe or died. Leave now, even mid-generation (no one is listening);
        # not PR_SET_PDEATHSIG, which fires when the parent *thread* that started us ends, not the process.
        os._exit(0)

    def generate(self, command: dict) -> None:
        from assistants.providers.base import Cancelled, ProviderError

        cid, cancel = command["id"], self.cancels[command["id"]]
        try:
            result = self.chat.chat(command["request"], lambda piece: self.send({"id": cid, "event": "text", "text": piece}),
                                    cancel)
        except Cancelled:
            self.send({"id": cid, "event": "cancelled"})
        except ProviderError as exc:
            self.send({"id": cid, "event": "error", "message": exc.message, "code": exc.code})
        except Exception as exc:  # reported to the run; the worker stays up for the next one
            self.send({"id": cid, "event": "error", "message": f"{type(exc).__name__}: {exc}", "code": "server_error"})
        else:
            self.send({"id": cid, "event": "done", "result": asdict(result)})
        finally:
            self.cancels.pop(cid, None)


def main() -> None:
    out = _protocol_out()
    # No core files: a crash dump of a process holding a multi-GB model would fill the disk (and the project folder).
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    Worker(out).run()


if __name__ == "__main__":
    main()
