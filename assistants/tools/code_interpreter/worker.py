"""Notebook-style Python worker: one per session, run inside the sandbox, stdlib only.

Protocol (fds 0/1 at start, moved aside so user code cannot touch them by accident): every
message is a 4-byte big-endian length + a JSON header, followed by `len(header["blobs"])`
length-prefixed binary frames. Requests carry input files, replies carry images and files.
"""

import ast
import builtins
import io
import json
import linecache
import os
import resource
import signal
import stat
import struct
import sys
import time
import traceback
import warnings

LIMITS = {
    "memory_mb": (resource.RLIMIT_AS, 1024 * 1024),
    "max_processes": (resource.RLIMIT_NPROC, 1),
    "max_file_mb": (resource.RLIMIT_FSIZE, 1024 * 1024),
    "max_open_files": (resource.RLIMIT_NOFILE, 1),
}
CELL_PREFIX = "<cell "


def capture_budget(max_chars: int) -> int:
    """Bytes of output the capture keeps: enough for max_chars of any UTF-8, plus the notes."""
    return max_chars * 4 + 4096


def cap_text(raw: bytes, size: int, max_chars: int, dropped: int = 0, *, at_least: bool = False) -> str:
    """The first max_chars of captured output (raw: its first bytes, of size in all), with a note on the rest."""
    text = raw.decode("utf-8", errors="replace")
    extra = len(text) - max_chars + (size - len(raw)) + dropped
    if extra > 0:
        text = text[:max_chars] + f"\n[output truncated: {'at least ' if at_least else ''}{extra} more characters]\n"
    return text


def read_exact(fd: int, n: int) -> bytes:
    """Read exactly n bytes or raise EOFError."""
    chunks = []
    while n:
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def read_message(fd: int) -> tuple[dict, list[bytes]]:
    """Read one header and its binary frames."""
    header = json.loads(read_exact(fd, struct.unpack(">I", read_exact(fd, 4))[0]))
    blobs = [read_exact(fd, struct.unpack(">Q", read_exact(fd, 8))[0]) for _ in header.get("blobs", ())]
    return header, blobs


def write_message(fd: int, header: dict, blobs: list[bytes] = ()) -> None:
    """Write one header and its binary frames."""
    header = dict(header, blobs=[len(b) for b in blobs])
    data = json.dumps(header).encode()
    parts = [struct.pack(">I", len(data)), data]
    for blob in blobs:
        parts += [struct.pack(">Q", len(blob)), blob]
    payload = b"".join(parts)
    view = memoryview(payload)
    while view:
        view = view[os.write(fd, view) :]


class CappedOutput(io.RawIOBase):
    """Writes to the capture fd until it holds `budget` bytes, then only counts what it drops."""

    def __init__(self, fd: int, budget: int):
        self.fd, self.budget, self.dropped = fd, budget, 0

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        n = len(b)
        try:
            if os.lseek(self.fd, 0, os.SEEK_END) < self.budget:
                os.write(self.fd, b)
            else:
                self.dropped += n
        except OSError:  # a full /tmp or RLIMIT_FSIZE must not break print()
            self.dropped += n
        return n


def snapshot(workdir: str) -> dict[str, tuple[int, int]]:
    """Regular files under workdir -> (mtime_ns, size)."""
    found = {}
    for dirpath, _dirs, names in os.walk(workdir):
        for name in names:
            path = os.path.join(dirpath, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                found[os.path.relpath(path, workdir)] = (st.st_mtime_ns, st.st_size)
    return found


class Worker:
    """Holds the session namespace and runs one cell per request."""

    def __init__(self, config: dict, proto_in: int, proto_out: int, capture_fd: int):
        self.config, self.proto_in, self.proto_out, self.capture_fd = config, proto_in, proto_out, capture_fd
        self.workdir = config["workdir"]
        self.pid = os.getpid()
        self.cells = 0
        self.namespace = {"__name__": "__main__", "__builtins__": builtins}
        self.raw = CappedOutput(capture_fd, capture_budget(config["max_output_chars"]))
        self.stream = io.TextIOWrapper(self.raw, encoding="utf-8", errors="backslashreplace", write_through=True)

    def serve(self) -> None:
        """Answer requests until the parent closes the pipe."""
        write_message(self.proto_out, {"ready": True})
        while True:
            try:
                request, blobs = read_message(self.proto_in)
            except EOFError:
                return
            reply, out_blobs = self.handle(request, blobs)
            if os.getpid() != self.pid:  # a fork of the cell must never answer for the worker
                os._exit(0)
            write_message(self.proto_out, reply, out_blobs)

    def handle(self, request: dict, blobs: list[bytes]) -> tuple[dict, list[bytes]]:
        """Write input files, run the cell, collect output, figures and changed files."""
        self.reset_capture()
        unwritten = []
        for name, data in zip(request["files"], blobs, strict=True):
            try:
                with open(os.path.join(self.workdir, name), "wb") as fh:
                    fh.write(data)
            except OSError as exc:
                unwritten.append(name)
                self.stream.write(f"[could not write input file {name}: {exc}]\n")
        before = snapshot(self.workdir)
        error = self.run_cell(request["code"])
        if self.config.get("end_strays"):
            end_strays()
        images = self.collect_figures()
        files, skipped, missing = self.collect_files(before)
        if skipped:
            self.stream.write(f"[{skipped} changed file(s) not returned: over the size/number limit]\n")
        logs = self.read_capture()
        names = [name for name, _ in files]
        reply = {"logs": logs, "error": error, "images": len(images), "files": names, "missing": missing + unwritten}
        return reply, images + [data for _, data in files]

    def reset_capture(self) -> None:
        """Point stdout/stderr at the capture file, emptied (user code may have replaced them)."""
        os.ftruncate(self.capture_fd, 0)
        os.lseek(self.capture_fd, 0, os.SEEK_SET)
        self.raw.dropped = 0
        sys.stdout = sys.stderr = self.stream

    def read_capture(self) -> str:
        """Captured text capped at max_output_chars, with a note saying how much was cut."""
        self.stream.flush()
        cap = self.config["max_output_chars"]
        size = os.lseek(self.capture_fd, 0, os.SEEK_END)
        os.lseek(self.capture_fd, 0, os.SEEK_SET)
        raw = os.read(self.capture_fd, min(size, capture_budget(cap)))
        return cap_text(raw, size, cap, self.raw.dropped)

    def run_cell(self, code: str) -> str | None:
        """Exec the cell like Jupyter: the last expression's repr is printed. Returns an error line."""
        self.cells += 1
        filename = f"{CELL_PREFIX}{self.cells}>"
        linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
        try:
            tree = ast.parse(code, filename)
            last = None
            if tree.body and isinstance(tree.body[-1], ast.Expr) and not code.rstrip().endswith(";"):
                last = ast.Expression(tree.body.pop().value)
            exec(compile(tree, filename, "exec"), self.namespace)
            if last is not None:
                value = eval(compile(last, filename, "eval"), self.namespace)
                if value is not None:
                    self.namespace["_"] = value
                    print(repr(value))
            return None
        except BaseException as exc:  # SystemExit too: the session lives on
            if os.getpid() != self.pid:
                os._exit(1)
            return self.report(exc)

    def report(self, exc: BaseException) -> str:
        """Print the traceback without worker frames; return the one-line summary."""
        tb = exc.__traceback__
        while tb is not None and not tb.tb_frame.f_code.co_filename.startswith(CELL_PREFIX):
            tb = tb.tb_next
        try:
            self.stream.write("".join(traceback.format_exception(type(exc), exc, tb)))
        except MemoryError:  # formatting can fail right after one: keep the summary at least
            self.stream.write(f"{type(exc).__name__} (traceback unavailable)\n")
        try:
            message = str(exc).strip()
        except Exception:  # a broken __str__ still gets a summary
            message = ""
        summary = f"{type(exc).__name__}: {message.splitlines()[0]}" if message else type(exc).__name__
        return summary[:300]

    def collect_figures(self) -> list[bytes]:
        """PNG of every open matplotlib figure, then close them (only if the code used pyplot)."""
        plt = sys.modules.get("matplotlib.pyplot")
        if plt is None:
            return []
        images, nums = [], plt.get_fignums()
        if len(nums) > self.config["max_images"]:
            self.stream.write(f"[{len(nums) - self.config['max_images']} more figure(s) not rendered]\n")
        for num in nums[: self.config["max_images"]]:
            buf = io.BytesIO()
            try:
                plt.figure(num).savefig(buf, format="png", bbox_inches="tight")
                images.append(buf.getvalue())
            except Exception as exc:  # a broken figure must not lose the rest
                self.stream.write(f"[figure {num} could not be rendered: {exc}]\n")
        plt.close("all")
        return images

    def collect_files(self, before: dict) -> tuple[list[tuple[str, bytes]], int, list[str]]:
        """Files created or modified by the cell (within the caps), how many were left out, deletions."""
        after = snapshot(self.workdir)
        missing = sorted(set(before) - set(after))
        changed = sorted(name for name, sig in after.items() if before.get(name) != sig)
        files, total, skipped = [], 0, 0
        for name in changed:
            size = after[name][1]
            if len(files) >= self.config["max_returned_files"] or total + size > self.config["max_returned_bytes"]:
                skipped += 1
                continue
            try:
                with open(os.path.join(self.workdir, name), "rb") as fh:
                    data = fh.read()
            except OSError:
                skipped += 1
                continue
            files.append((name, data))
            total += len(data)
        return files, skipped, missing


def end_strays() -> None:
    """Kill every other process of the sandbox's pid namespace and reap our children (they hold pids).

    Only inside the sandbox, where kill(-1) reaches this session alone (never pid 1, bwrap). The
    parent checks from outside as well: a cell could have patched this function.
    """
    try:
        os.kill(-1, signal.SIGKILL)
    except OSError:  # nothing else running
        pass
    give_up = time.monotonic() + 1.0  # a child stuck in the kernel must not hold the reply for ever
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            if time.monotonic() > give_up:
                return
            time.sleep(0.001)


def apply_limits(config: dict) -> None:
    """Set soft = hard rlimits so the cell cannot raise them back."""
    for key, (which, unit) in LIMITS.items():
        if config["limits"].get(key):
            value = config["limits"][key] * unit
            resource.setrlimit(which, (value, value))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def main() -> None:
    """Move the protocol off fds 0/1, capture fds 1/2 in the parent's memfd, apply limits, serve.

    The parent made the capture file and keeps a descriptor of it, so what a cell printed before
    it timed out or crashed can still be read after the sandbox is killed.
    """
    config = json.loads(sys.argv[1])
    proto_in, proto_out = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    capture_fd = config["capture_fd"]
    os.dup2(capture_fd, 1)  # subprocess and C-level output land in the same capture, in order
    os.dup2(capture_fd, 2)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # over RLIMIT_FSIZE: an OSError, not death
    warnings.filterwarnings("ignore", message=".*non-interactive.*cannot be shown")
    os.chdir(config["workdir"])
    apply_limits(config)
    Worker(config, proto_in, proto_out, capture_fd).serve()


if __name__ == "__main__":
    main()
