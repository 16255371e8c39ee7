"""The price table and cost estimates (pure functions, no model)."""

from __future__ import annotations

import pytest

from assistants import pricing
from assistants.config import EMBEDDED_MODEL_ID

pytestmark = pytest.mark.no_database  # no store: runs once, not per database


@pytest.mark.parametrize(("model", "price"), [
    ("gpt-4o", (2.50, 10.00)),
    ("gpt-4o-2024-08-06", (2.50, 10.00)),      # a snapshot takes its family's price
    ("gpt-4o-2024-05-13", (5.00, 15.00)),      # unless it has its own
    ("gpt-4o-mini", (0.15, 0.60)),             # longest prefix wins over "gpt-4o"
    ("gpt-4o-mini-2024-07-18", (0.15, 0.60)),
    ("gpt-4-turbo-2024-04-09", (10.00, 30.00)),
    ("gpt-4-0613", (30.00, 60.00)),
    ("gpt-3.5-turbo-0125", (0.50, 1.50)),
    ("o3-mini", (1.10, 4.40)),
    ("openai/gpt-4.1-nano", (0.10, 0.40)),     # gateway-style vendor prefix
    ("GPT-4O", (2.50, 10.00)),
])
def test_known_openai_models(model, price):
    got = pricing.model_price(model)
    assert (got.input, got.output) == price and got.known


@pytest.mark.parametrize("model", [EMBEDDED_MODEL_ID, "llama3.2:3b", "qwen2.5-coder", "gpt-4oops", "", None])
def test_local_and_unknown_models_cost_nothing(model):
    assert pricing.model_price(model) == pricing.FREE
    assert pricing.token_cost(model, 1_000_000, 1_000_000) == 0


def test_token_and_usage_cost():
    assert pricing.token_cost("gpt-4o-mini", 1_000_000, 1_000_000) == pytest.approx(0.75)
    assert pricing.usage_cost("gpt-4o", {"prompt_tokens": 1000, "completion_tokens": 500, "total_tokens": 1500}) \
        == pytest.approx(0.0025 + 0.005)
    assert pricing.usage_cost("gpt-4o", None) == 0


def test_code_interpreter_sessions_last_an_hour():
    starts = pricing.code_interpreter_sessions([100, 200, 3699, 3700, 8000, 50])
    assert starts == [50, 3699, 8000]  # 50..3649, 3699..7298, 8000..
    assert pricing.code_interpreter_cost(len(starts)) == pytest.approx(0.09)
    assert pricing.code_interpreter_sessions([]) == []


def test_file_search_storage_first_gb_free():
    assert pricing.file_search_storage_cost(pricing.GB // 2) == 0
    assert pricing.file_search_storage_cost(3 * pricing.GB) == pytest.approx(0.20)
    assert pricing.file_search_storage_cost(3 * pricing.GB, days=30) == pytest.approx(6.0)


def test_format_usd():
    assert pricing.format_usd(0) == "$0"
    assert pricing.format_usd(0.00001) == "<$0.0001"
    assert pricing.format_usd(0.0025) == "$0.0025"
    assert pricing.format_usd(1234.5) == "$1,234.50"
