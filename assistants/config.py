"""Settings from the environment, `.env` and the settings the Playground saves (in the database, see shared_settings)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlparse

from dotenv import load_dotenv

EMBEDDED_MODEL_ID = "smollm2-135m-instruct"
OPENAI_DEFAULT_URL = "https://api.openai.com/v1"

_Num = TypeVar("_Num", int, float)


@dataclass(frozen=True)
class Backend:
    """One OpenAI-compatible server: its name, base URL and (optional) API key."""

    name: str
    base_url: str
    api_key: str = field(default="", repr=False)  # never in a log line


def same_url(a: str, b: str) -> bool:
    """Whether two base URLs name the same server and path (case of scheme and host, a trailing / ignored)."""
    def norm(url: str) -> tuple[str, str, str]:
        parsed = urlparse((url or "").strip())
        return parsed.scheme.lower(), parsed.netloc.lower(), parsed.path.rstrip("/")
    return norm(a) == norm(b)


def saved_key_url(ui: dict, env: dict) -> str:
    """The URL the settings file's OpenAI key was entered with."""
    return ui.get("openai_api_key_url") or ui.get("openai_base_url") or env.get("OPENAI_BASE_URL") or OPENAI_DEFAULT_URL


def openai_key_for(url: str, ui: dict, env: dict) -> str:
    """The key that belongs to OpenAI base URL `url` (empty = OpenAI's): never one entered for another URL.

    A key saved on the Settings page is bound to the URL it was saved with (`openai_api_key_url`; older files
    without it: the URL saved beside it). OPENAI_API_KEY belongs to OPENAI_BASE_URL (or OpenAI's) only.
    """
    url = url or OPENAI_DEFAULT_URL
    saved = ui.get("openai_api_key", "")
    if saved and same_url(saved_key_url(ui, env), url):
        return saved
    if env.get("OPENAI_API_KEY") and same_url(env.get("OPENAI_BASE_URL") or OPENAI_DEFAULT_URL, url):
        return env["OPENAI_API_KEY"]
    return ""


def _int(env: dict, key: str, default: int) -> int:
    return _number(env, key, default, int, "a whole number")


def _float(env: dict, key: str, default: float) -> float:
    return _number(env, key, default, float, "a number")


def _number(env: dict, key: str, default: _Num, convert: Callable[[str], _Num], kind: str) -> _Num:
    raw = env.get(key, "")
    try:
        return convert(raw) if str(raw).strip() else default
    except ValueError:
        raise ValueError(f"{key} must be {kind}, got {raw!r}") from None


def _dir(env: dict, key: str) -> Path | None:
    raw = str(env.get(key, "")).strip()
    return Path(raw).expanduser().resolve() if raw else None


def _bool(env: dict, key: str, default: bool = False) -> bool:
    raw = str(env.get(key, "")).strip().lower()
    if not raw:
        return default
    return raw in ("1", "true", "yes", "on")


def parse_aliases(raw: str) -> dict[str, str]:
    """Parse `a=b,c=d` (or one pair a line) into {"a": "b", "c": "d"}; raises ValueError on a malformed pair."""
    return dict(_named_items((raw or "").replace("\n", ","), "model alias", "'alias=model'"))


def parse_backends(raw: str) -> list[Backend]:
    """Parse PLAYGROUND_BACKENDS: `name=url` or `name=url|key`, comma-separated."""
    backends = []
    for name, rest in _named_items(raw, "backend", "'name=http://host:port/v1' (optionally '|key')"):
        url, _, key = rest.partition("|")
        backends.append(Backend(name, url.strip(), key.strip()))
    return backends


def _named_items(raw: str, what: str, form: str) -> Iterator[tuple[str, str]]:
    """(name, value) of each `name=value` in a comma-separated list, stripped, blanks skipped; ValueError on a malformed one."""
    for item in (raw or "").split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise ValueError(f"{what} {item!r} must look like {form}")
        yield name.strip(), value.strip()


@dataclass(frozen=True)
class Settings:
    """Every setting the runtime reads, in one place."""

    data_dir: Path
    openai_api_key: str = field(default="", repr=False)  # never in a log line
    openai_base_url: str = ""
    backends: tuple[Backend, ...] = ()
    aliases: dict[str, str] = field(default_factory=dict)
    default_model: str = EMBEDDED_MODEL_ID
    embedded_enabled: bool = True
    embedded_context: int = 4096
    embedded_threads: int = 0
    model_timeout_s: float = 120.0
    models_cache_s: float = 60.0
    run_workers: int = 8
    max_tool_rounds: int = 10
    run_expires_s: int = 600
    run_lease_s: float = 10.0  # how long a process's claim on a run (or an indexing job) lasts unless renewed
    max_upload_mb: int = 100
    embedding_model: str = ""
    code_timeout_s: float = 30.0
    code_memory_mb: int = 1024
    code_memory_max_mb: int = 4096  # the most a container's memory_limit may budget a session
    code_max_processes: int = 64
    code_disk_mb: int = 500
    code_idle_minutes: float = 30.0
    allow_unsandboxed_code: bool = False
    api_keys: tuple[str, ...] = ()
    models_dir_override: Path | None = None  # PLAYGROUND_MODELS_DIR; see `models_dir`
    files_dir: Path | None = None  # PLAYGROUND_FILES_DIR: a folder every instance shares for file bytes; see `blob_dir`
    ollama_autodetect: bool = True
    code_max_sessions: int = 8
    code_output_quota_mb: int = 200
    code_cpus: float = 1.0
    # how long other instances leave a run for the instance holding its thread's Code Interpreter session (0: never)
    code_affinity_s: float = 1.5
    playground_password: str = ""
    # PLAYGROUND_DATABASE_URL: postgresql://… shares one database between instances; "" = SQLite. Never in repr (password).
    database_url: str = field(default="", repr=False)

    @property
    def db_path(self) -> Path:
        return self.data_dir / "playground.db"

    @property
    def models_dir(self) -> Path:
        """The folder whose `*.gguf` files are local models (PLAYGROUND_MODELS_DIR, default <data dir>/models)."""
        return self.models_dir_override or self.data_dir / "models"

    @property
    def blob_dir(self) -> Path | None:
        """Where uploaded files' bytes live: PLAYGROUND_FILES_DIR, else `<data dir>/files` on SQLite; None = in PostgreSQL."""
        if self.files_dir is not None:
            return self.files_dir
        return None if self.database_url else self.data_dir / "files"

    @property
    def settings_file(self) -> Path:
        """Where versions before the settings moved into the database saved them (imported once, see shared_settings)."""
        return self.data_dir / "settings.json"

    def all_backends(self) -> list[Backend]:
        """The OpenAI backend (if a key or URL is set) followed by the named extra backends."""
        out = []
        if self.openai_api_key or self.openai_base_url:
            out.append(Backend("openai", self.openai_base_url or OPENAI_DEFAULT_URL, self.openai_api_key))
        out.extend(self.backends)
        return out


def read_settings_file(path: Path) -> dict:
    """A settings.json's document (the Settings page's, as older versions saved it); {} when absent."""
    try:
        values = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ValueError(f"settings file {path} is not valid JSON ({exc}); fix or delete it") from None
    if not isinstance(values, dict):
        raise ValueError(f"settings file {path} is not a JSON object (it holds a {type(values).__name__}); "
                         "fix or delete it")
    return values


def write_settings_file(path: Path, values: dict) -> None:
    """Atomically write a settings.json as older versions did (readable by the owner only: it may hold keys)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(values, indent=2, sort_keys=True), "utf-8")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def load_settings(env: dict | None = None, *, dotenv: bool = True, ui: dict | None = None) -> Settings:
    """Build Settings from `.env`, the environment and `ui`, the Settings page's document (it wins for backends).

    `ui` is what the database holds (shared_settings.settings_from_database); without it, a settings.json the
    database has not imported yet, if any (a Runtime then applies the database's settings: see Runtime.__init__).
    """
    if env is None:
        if dotenv:
            load_dotenv(override=False)
        env = dict(os.environ)
    data_dir = Path(env.get("PLAYGROUND_DATA_DIR") or "./.playground").expanduser().resolve()
    if ui is None:
        ui = read_settings_file(data_dir / "settings.json")
    backends = parse_backends(env.get("PLAYGROUND_BACKENDS", ""))
    ui_backends = [Backend(b["name"], b["base_url"], b.get("api_key", "")) for b in ui.get("backends", [])]
    names = {b.name for b in ui_backends}
    backends = ui_backends + [b for b in backends if b.name not in names]
    aliases = parse_aliases(env.get("PLAYGROUND_MODEL_ALIASES", ""))
    aliases.update(ui.get("aliases", {}))
    keys = tuple(k.strip() for k in env.get("PLAYGROUND_API_KEYS", "").split(",") if k.strip())
    openai_url = ui.get("openai_base_url") or env.get("OPENAI_BASE_URL", "")
    return Settings(
        data_dir=data_dir,
        openai_api_key=openai_key_for(openai_url, ui, env),
        openai_base_url=openai_url,
        backends=tuple(backends),
        aliases=aliases,
        default_model=ui.get("default_model") or env.get("PLAYGROUND_DEFAULT_MODEL") or EMBEDDED_MODEL_ID,
        embedded_enabled=_bool(env, "PLAYGROUND_EMBEDDED_MODEL", True),
        embedded_context=_int(env, "PLAYGROUND_EMBEDDED_CONTEXT", 4096),
        embedded_threads=_int(env, "PLAYGROUND_EMBEDDED_THREADS", 0),
        model_timeout_s=_float(env, "PLAYGROUND_MODEL_TIMEOUT", 120.0),
        models_cache_s=_float(env, "PLAYGROUND_MODELS_CACHE_SECONDS", 60.0),
        run_workers=_int(env, "PLAYGROUND_RUN_WORKERS", 8),
        max_tool_rounds=_int(env, "PLAYGROUND_MAX_TOOL_ROUNDS", 10),
        run_expires_s=_int(env, "PLAYGROUND_RUN_EXPIRES_SECONDS", 600),
        run_lease_s=_float(env, "PLAYGROUND_RUN_LEASE_SECONDS", 10.0),
        max_upload_mb=_int(env, "PLAYGROUND_MAX_UPLOAD_MB", 100),
        embedding_model=env.get("PLAYGROUND_EMBEDDING_MODEL", ""),
        code_timeout_s=_float(env, "PLAYGROUND_CODE_TIMEOUT", 30.0),
        code_memory_mb=_int(env, "PLAYGROUND_CODE_MEMORY_MB", 1024),
        code_memory_max_mb=_int(env, "PLAYGROUND_CODE_MEMORY_MAX_MB", 4096),
        code_max_processes=_int(env, "PLAYGROUND_CODE_MAX_PROCESSES", 64),
        code_disk_mb=_int(env, "PLAYGROUND_CODE_DISK_MB", 500),
        code_idle_minutes=_float(env, "PLAYGROUND_CODE_IDLE_MINUTES", 30.0),
        allow_unsandboxed_code=_bool(env, "PLAYGROUND_ALLOW_UNSANDBOXED_CODE", False),
        database_url=env.get("PLAYGROUND_DATABASE_URL", "").strip(),
        api_keys=keys,
        models_dir_override=_dir(env, "PLAYGROUND_MODELS_DIR"),
        files_dir=_dir(env, "PLAYGROUND_FILES_DIR"),
        ollama_autodetect=_bool(env, "PLAYGROUND_OLLAMA_AUTODETECT", True),
        code_max_sessions=_int(env, "PLAYGROUND_CODE_MAX_SESSIONS", 8),
        code_output_quota_mb=_int(env, "PLAYGROUND_CODE_OUTPUT_QUOTA_MB", 200),
        code_cpus=_float(env, "PLAYGROUND_CODE_CPUS", 1.0),
        code_affinity_s=_float(env, "PLAYGROUND_CODE_AFFINITY_SECONDS", 1.5),
        playground_password=env.get("PLAYGROUND_PASSWORD", ""),
    )
