"""The OpenAI Agents SDK (`openai-agents`) pointed at our server: an agent with a function tool, plain and streamed."""

from __future__ import annotations

import asyncio

import pytest

agents = pytest.importorskip("agents")
from agents import Agent, OpenAIResponsesModel, RunConfig, Runner, function_tool  # noqa: E402
from openai import AsyncOpenAI  # noqa: E402

CALLS: list[str] = []


@function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    CALLS.append(city)
    return f"sunny in {city}"


def _agent(api) -> Agent:
    client = AsyncOpenAI(base_url=api.base_url, api_key=api.key, max_retries=0)
    return Agent(name="Weather", instructions="Answer with the weather.", tools=[get_weather],
                 model=OpenAIResponsesModel(model="gpt-4o-mini", openai_client=client))


def test_agent_with_a_function_tool(api, fake):
    CALLS.clear()
    fake.add({"tool_calls": [("get_weather", '{"city": "Lima"}')]}, {"text": "It is sunny in Lima."})
    result = Runner.run_sync(_agent(api), "Weather in Lima?", run_config=RunConfig(tracing_disabled=True))
    assert result.final_output == "It is sunny in Lima." and CALLS == ["Lima"]
    tool_msg = fake.requests[-1]["messages"][-1]
    assert tool_msg["role"] == "tool" and tool_msg["content"] == "sunny in Lima"
    assert fake.requests[-1]["messages"][0] == {"role": "system", "content": "Answer with the weather."}


def test_agent_streamed_run(api, fake):
    CALLS.clear()
    fake.add({"tool_calls": [("get_weather", '{"city": "Kyiv"}')]}, {"text": "Sunny in Kyiv today."})

    async def main() -> tuple[list[str], str]:
        result = Runner.run_streamed(_agent(api), "Weather in Kyiv?", run_config=RunConfig(tracing_disabled=True))
        deltas = []
        async for event in result.stream_events():
            if event.type == "raw_response_event" and event.data.type == "response.output_text.delta":
                deltas.append(event.data.delta)
        return deltas, result.final_output

    deltas, final = asyncio.run(main())
    assert "".join(deltas) == "Sunny in Kyiv today." and final == "Sunny in Kyiv today." and CALLS == ["Kyiv"]


def test_agent_with_file_search_tool(api, fake):
    import io

    from agents import FileSearchTool

    sdk = api.client()
    f = sdk.files.create(file=("faq.txt", io.BytesIO(b"Opening hours are nine to five."), "text/plain"),
                         purpose="assistants")
    vs = sdk.vector_stores.create(name="faq")
    sdk.vector_stores.files.create_and_poll(file_id=f.id, vector_store_id=vs.id)
    client = AsyncOpenAI(base_url=api.base_url, api_key=api.key, max_retries=0)
    agent = Agent(name="FAQ", instructions="Answer from the files.",
                  tools=[FileSearchTool(vector_store_ids=[vs.id], max_num_results=3, include_search_results=True)],
                  model=OpenAIResponsesModel(model="gpt-4o-mini", openai_client=client))
    fake.add({"tool_calls": [("file_search", '{"query": "opening hours"}')]}, {"text": "Nine to five."})
    result = Runner.run_sync(agent, "When are you open?", run_config=RunConfig(tracing_disabled=True))
    assert result.final_output == "Nine to five."
    tool_msg = next(m for m in fake.requests[-1]["messages"] if m["role"] == "tool")
    assert "nine to five" in tool_msg["content"]


def test_agent_with_code_interpreter_tool(api, fake):
    import json
    import shutil

    from agents import CodeInterpreterTool

    if shutil.which("bwrap") is None:
        pytest.skip("needs bubblewrap")
    client = AsyncOpenAI(base_url=api.base_url, api_key=api.key, max_retries=0)
    agent = Agent(name="Calc", instructions="Use Python.",
                  tools=[CodeInterpreterTool(tool_config={"type": "code_interpreter", "container": {"type": "auto"}})],
                  model=OpenAIResponsesModel(model="gpt-4o-mini", openai_client=client))
    fake.add({"tool_calls": [("code_interpreter", json.dumps({"code": "print(2**10)"}))]}, {"text": "1024"})
    result = Runner.run_sync(agent, "2^10?", run_config=RunConfig(tracing_disabled=True))
    assert result.final_output == "1024"
    tool_msg = next(m for m in fake.requests[-1]["messages"] if m["role"] == "tool")
    assert tool_msg["content"].startswith("1024")


def test_agent_calling_its_tool_twice_keeps_one_run(api, fake):
    CALLS.clear()
    fake.add({"tool_calls": [("get_weather", '{"city": "Quito"}')]}, {"tool_calls": [("get_weather", '{"city": "Lima"}')]},
             {"text": "Both sunny."})
    runs_before = api.rt.store.count("runs")
    result = Runner.run_sync(_agent(api), "Quito and Lima?", run_config=RunConfig(tracing_disabled=True))
    assert result.final_output == "Both sunny." and CALLS == ["Quito", "Lima"]
    assert api.rt.store.count("runs") == runs_before + 1  # the replayed history continued the same run
    tools = [m for m in fake.requests[-1]["messages"] if m["role"] == "tool"]
    assert [t["content"] for t in tools] == ["sunny in Quito", "sunny in Lima"]


def test_agent_runs_in_a_conversation_and_by_previous_response_id(api, fake):
    CALLS.clear()
    conv = api.client().conversations.create()
    fake.add({"tool_calls": [("get_weather", '{"city": "Oslo"}')]}, {"text": "Snow in Oslo."})
    first = Runner.run_sync(_agent(api), "Oslo?", conversation_id=conv.id, run_config=RunConfig(tracing_disabled=True))
    assert first.final_output == "Snow in Oslo." and CALLS == ["Oslo"]
    fake.add({"text": "You asked about Oslo."})
    again = Runner.run_sync(_agent(api), "What did I ask?", conversation_id=conv.id,
                            run_config=RunConfig(tracing_disabled=True))
    assert again.final_output == "You asked about Oslo."
    history = [m.get("content") for m in fake.requests[-1]["messages"]]
    assert "Oslo?" in history and "Snow in Oslo." in history and history[-1] == "What did I ask?"
    fake.add({"text": "Still Oslo."})
    chained = Runner.run_sync(_agent(api), "Sure?", previous_response_id=again.last_response_id,
                              run_config=RunConfig(tracing_disabled=True))
    assert chained.final_output == "Still Oslo." and fake.requests[-1]["messages"][-1]["content"] == "Sure?"


def test_agent_with_an_openai_conversations_session(api, fake):
    from agents import OpenAIConversationsSession

    CALLS.clear()
    client = AsyncOpenAI(base_url=api.base_url, api_key=api.key, max_retries=0)
    agent = Agent(name="Weather", instructions="Answer with the weather.", tools=[get_weather],
                  model=OpenAIResponsesModel(model="gpt-4o-mini", openai_client=client))

    async def main() -> tuple[str, str, list]:
        session = OpenAIConversationsSession(openai_client=client)
        fake.add({"tool_calls": [("get_weather", '{"city": "Tartu"}')]}, {"text": "Sunny in Tartu."})
        first = await Runner.run(agent, "Tartu?", session=session, run_config=RunConfig(tracing_disabled=True))
        fake.add({"text": "You asked about Tartu."})
        second = await Runner.run(agent, "What did I ask?", session=session,
                                  run_config=RunConfig(tracing_disabled=True))
        return first.final_output, second.final_output, await session.get_items()

    first, second, items = asyncio.run(main())
    assert first == "Sunny in Tartu." and second == "You asked about Tartu." and CALLS == ["Tartu"]
    assert [i["type"] for i in items] == ["message", "function_call", "function_call_output", "message", "message",
                                          "message"]
    assert items[1]["name"] == "get_weather" and items[2]["output"] == "sunny in Tartu"
    sent = [m.get("content") for m in fake.requests[-1]["messages"]]
    assert "Tartu?" in sent and sent[-1] == "What did I ask?"
