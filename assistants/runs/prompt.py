"""Building the model request: system text, thread history, this run's tool rounds, truncation."""

from __future__ import annotations

from assistants.messages import message_text
from assistants.store import Store
from assistants.tools import BUILTIN_DEFINITIONS


def estimate_tokens(messages: list[dict]) -> int:
    """A cheap prompt-size estimate (about 4 characters a token) used for truncation."""
    total = 0
    for m in messages:
        content = m.get("content") or ""
        if isinstance(content, list):
            content = " ".join(p.get("text", "") for p in content) + " " * 3000 * sum(p["type"] == "image_url" for p in content)
        total += 4 + len(content) // 4
        for call in m.get("tool_calls") or []:
            total += len(call["function"]["arguments"]) // 4 + 8
    return total


class PromptBuilder:
    """Turns a run and its thread into a Chat Completions request."""

    def __init__(self, store: Store):
        self.store = store
        self.image_loader = None  # file id -> data URL; set when the files service is installed

    def build_request(self, run: dict, model: str, messages: list[dict], tool_choice, max_tokens: int | None, *,
                      builtins: bool = True) -> dict:
        """The Chat Completions body; `builtins=False` leaves the built-in tools out (the run's max_tool_calls is spent)."""
        tools = []
        for tool in run.get("tools") or []:
            if tool["type"] == "function":
                fn = {k: v for k, v in tool["function"].items() if v is not None and k != "strict"}
                tools.append({"type": "function", "function": fn})
            elif builtins:
                tools.append(BUILTIN_DEFINITIONS[tool["type"]])
        request: dict = {"model": model, "messages": messages}
        if tools:
            request["tools"] = tools
            if isinstance(tool_choice, dict) and tool_choice.get("type") in BUILTIN_DEFINITIONS:
                tool_choice = {"type": "function", "function": {"name": tool_choice["type"]}} if builtins else "auto"
            request["tool_choice"] = tool_choice
            if run.get("parallel_tool_calls") is False:
                request["parallel_tool_calls"] = False
        for key in ("temperature", "top_p"):
            if run.get(key) is not None:
                request[key] = run[key]
        fmt = run.get("response_format")
        if isinstance(fmt, dict) and fmt.get("type") != "text":
            request["response_format"] = fmt
        if max_tokens is not None:
            request["max_tokens"] = max_tokens
        if run.get("_top_logprobs") is not None:  # the Responses API's include/top_logprobs
            request["logprobs"] = True
            if run["_top_logprobs"]:
                request["top_logprobs"] = run["_top_logprobs"]
        return request

    def chat_messages(self, run: dict, context_window: int | None = None,
                      steps: list[dict] | None = None) -> list[dict] | None:
        """System + thread history + this run's tool rounds (`steps`: the run's steps, if the caller has just read
        them), truncated as the run asks; None if it cannot fit."""
        system = run.get("instructions") or ""
        if run.get("_additional_instructions"):
            system = f"{system}\n\n{run['_additional_instructions']}".strip()
        history = []
        thread_messages = self.store.all("messages", thread_id=run["thread_id"])
        for msg in thread_messages:
            if msg.get("run_id") == run["id"] and msg["role"] == "assistant":
                continue
            text = message_text(msg)
            if msg["role"] == "user" and msg.get("attachments"):
                names = ", ".join(self._file_name(a["file_id"]) for a in msg["attachments"])
                text += f"\n[attached files: {names}]"
            if (msg.get("metadata") or {}).get("role") in ("system", "developer"):  # kept by a Responses conversation
                history.append({"role": "system", "content": text})
                continue
            history.append({"role": msg["role"], "content": self._with_images(msg, text)})
        strategy = run.get("truncation_strategy") or {"type": "auto"}
        if strategy.get("type") == "last_messages" and strategy.get("last_messages"):
            history = history[-strategy["last_messages"]:]
        if steps is None:
            steps = self.store.all("run_steps", run_id=run["id"])
        tail = self._run_turns(steps, {m["id"]: m for m in thread_messages})
        head = [{"role": "system", "content": system}] if system else []
        limit = run.get("max_prompt_tokens")
        if context_window:
            room = context_window - (run.get("max_completion_tokens") or 512) - 64
            limit = min(limit, room) if limit else room
        if limit:
            while history and estimate_tokens(head + history + tail) > limit:
                if len(history) == 1:
                    break
                history.pop(0)
            if estimate_tokens(head + history + tail) > limit and run.get("max_prompt_tokens"):
                return None
        return head + history + tail

    def _file_name(self, file_id: str) -> str:
        meta = self.store.get("files", file_id)
        return f"{meta['filename']} ({file_id})" if meta else file_id

    def _with_images(self, msg: dict, text: str):
        """Image parts become Chat Completions image_url parts (data URLs for uploaded files)."""
        images = [b for b in msg.get("content", []) if b["type"] in ("image_file", "image_url")]
        if not images or msg["role"] != "user":
            return text
        parts: list[dict] = [{"type": "text", "text": text}]
        for block in images:
            if block["type"] == "image_url":
                parts.append({"type": "image_url", "image_url": {"url": block["image_url"]["url"],
                                                                 "detail": block["image_url"].get("detail", "auto")}})
            elif self.image_loader is not None:
                url = self.image_loader(block["image_file"]["file_id"])
                if url:
                    parts.append({"type": "image_url", "image_url": {"url": url, "detail": block["image_file"].get("detail", "auto")}})
        return parts if len(parts) > 1 else text

    @staticmethod
    def _run_turns(steps: list[dict], messages: dict[str, dict]) -> list[dict]:
        """The run's own rounds so far (`messages`: the thread's, by id, where its replies are)."""
        turns: list[dict] = []
        for step in steps:
            details = step["step_details"]
            if details["type"] == "message_creation":
                msg = messages.get(details["message_creation"]["message_id"])
                if msg and message_text(msg):
                    turns.append({"role": "assistant", "content": message_text(msg)})
            elif details["type"] == "tool_calls":
                outputs = step.get("_outputs", {})
                calls = [c for c in details["tool_calls"] if c["id"] in outputs]
                if not calls:
                    continue
                turns.append({"role": "assistant", "content": None, "tool_calls": [
                    {"id": c["id"], "type": "function", "function": {"name": step["_names"][c["id"]],
                                                                     "arguments": step["_arguments"][c["id"]]}}
                    for c in calls]})
                for c in calls:
                    turns.append({"role": "tool", "tool_call_id": c["id"], "name": step["_names"][c["id"]],
                                  "content": outputs[c["id"]]})
        return turns
