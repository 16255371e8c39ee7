"""The seed notes' client code (sections 1-8), verbatim; run it with OPENAI_BASE_URL=http://127.0.0.1:8000/v1."""
# ruff: noqa: E402

from openai import OpenAI
client = OpenAI()

assistant = client.beta.assistants.create(
    name="Investing Bot",
    instructions="You are an expert in calculating investments.",
    tools=[{"type": "code_interpreter"}],
    model="gpt-4o-mini",
)

thread = client.beta.threads.create()

message = client.beta.threads.messages.create(
    thread_id=thread.id,
    role="user",
    content="You have $10,000 to invest. You want to double your money in 20 years. What average return will you need to get?"
)

run = client.beta.threads.runs.create(
    thread_id=thread.id,
    assistant_id=assistant.id,
    instructions="Provide detailed analysis."
)

import time

while run.status != "completed":
    run = client.beta.threads.runs.retrieve(
        thread_id=thread.id,
        run_id=run.id
    )
    print(run.status)
    time.sleep(5)

messages = client.beta.threads.messages.list(thread_id=thread.id)

for thread_message in messages.data[::-1]:
    print(thread_message.content[0].text.value)
    print('\n')

def extract_rate_of_return(response):
    import re
    match = re.search(r'(\d+(\.\d+)?%)', response)
    if match:
        return match.group(1)
    return None

for thread_message in messages.data[::-1]:
    if thread_message.role == "assistant":
        rate_of_return = extract_rate_of_return(thread_message.content[0].text.value)
        if rate_of_return:
            print(f"The average rate of return will need to be at least {rate_of_return}.")
        else:
            print("Could not extract the rate of return from the response.")
        break

my_assistants = client.beta.assistants.list(order="desc", limit=20)
print(my_assistants.data)

response = client.beta.assistants.delete(my_assistants.data[0].id)
print(response)
