"""Estimated costs: OpenAI's list prices per model, $0 for local models, and the built-in tools' prices."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# The seed's tool prices (OpenAI's Assistants pricing).
CODE_INTERPRETER_SESSION_USD = 0.03
CODE_INTERPRETER_SESSION_SECONDS = 3600  # a session stays open for an hour of use
FILE_SEARCH_GB_DAY_USD = 0.10
FILE_SEARCH_FREE_GB = 1.0
GB = 1024 ** 3


@dataclass(frozen=True)
class Price:
    """USD per 1M tokens; `known` is False for models we have no list price for (local ones cost $0)."""

    input: float
    output: float
    known: bool = True


FREE = Price(0.0, 0.0, known=False)

# OpenAI list prices, USD per 1M input / output tokens (standard tier). Dated snapshots
# ("gpt-4o-mini-2024-07-18") match their family by prefix; the longest prefix wins.
OPENAI_PRICES: dict[str, Price] = {
    "gpt-5": Price(1.25, 10.00),
    "gpt-5-mini": Price(0.25, 2.00),
    "gpt-5-nano": Price(0.05, 0.40),
    "gpt-4.1": Price(2.00, 8.00),
    "gpt-4.1-mini": Price(0.40, 1.60),
    "gpt-4.1-nano": Price(0.10, 0.40),
    "gpt-4.5-preview": Price(75.00, 150.00),
    "gpt-4o": Price(2.50, 10.00),
    "gpt-4o-2024-05-13": Price(5.00, 15.00),
    "chatgpt-4o-latest": Price(5.00, 15.00),
    "gpt-4o-mini": Price(0.15, 0.60),
    "gpt-4-turbo": Price(10.00, 30.00),
    "gpt-4-1106-preview": Price(10.00, 30.00),
    "gpt-4-0125-preview": Price(10.00, 30.00),
    "gpt-4": Price(30.00, 60.00),
    "gpt-4-32k": Price(60.00, 120.00),
    "gpt-3.5-turbo": Price(0.50, 1.50),
    "gpt-3.5-turbo-instruct": Price(1.50, 2.00),
    "o1": Price(15.00, 60.00),
    "o1-mini": Price(1.10, 4.40),
    "o1-pro": Price(150.00, 600.00),
    "o3": Price(2.00, 8.00),
    "o3-mini": Price(1.10, 4.40),
    "o3-pro": Price(20.00, 80.00),
    "o4-mini": Price(1.10, 4.40),
}


def model_price(model: str | None) -> Price:
    """The list price of an OpenAI model id (snapshots included); FREE for anything else, e.g. local models."""
    name = (model or "").strip().lower()
    name = name.removeprefix("openai/")  # gateways such as LiteLLM/OpenRouter prefix the vendor
    best = ""
    for prefix in OPENAI_PRICES:
        if (name == prefix or name.startswith(prefix + "-")) and len(prefix) > len(best):
            best = prefix
    return OPENAI_PRICES[best] if best else FREE


def token_cost(model: str | None, prompt_tokens: int, completion_tokens: int) -> float:
    """USD for one model's token usage."""
    price = model_price(model)
    return (prompt_tokens * price.input + completion_tokens * price.output) / 1_000_000


def usage_cost(model: str | None, usage: dict | None) -> float:
    """USD for an Assistants `usage` object ({prompt_tokens, completion_tokens, ...}); 0 when absent."""
    if not usage:
        return 0.0
    return token_cost(model, int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))


def code_interpreter_sessions(call_times: Iterable[int | float]) -> list[float]:
    """Start times of the sessions a thread's code-interpreter calls opened (one session lasts an hour)."""
    starts: list[float] = []
    for ts in sorted(call_times):
        if not starts or ts >= starts[-1] + CODE_INTERPRETER_SESSION_SECONDS:
            starts.append(ts)
    return starts


def code_interpreter_cost(sessions: int) -> float:
    """USD for that many code-interpreter sessions."""
    return sessions * CODE_INTERPRETER_SESSION_USD


def file_search_storage_cost(total_bytes: int, days: float = 1.0) -> float:
    """USD for keeping `total_bytes` of vector stores for `days`; the first GB is free."""
    billable_gb = max(0.0, total_bytes / GB - FILE_SEARCH_FREE_GB)
    return billable_gb * FILE_SEARCH_GB_DAY_USD * days


def format_usd(amount: float) -> str:
    """Dollars for people: '$0' for nothing, small amounts with enough digits to be non-zero."""
    if amount <= 0:
        return "$0"
    if amount < 0.0001:
        return "<$0.0001"
    if amount < 0.01:
        return f"${amount:.4f}".rstrip("0")
    return f"${amount:,.2f}"
