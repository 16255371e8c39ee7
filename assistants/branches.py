"""Versions of a conversation: take a thread's tail out to answer again from a point, and flip between the tails.

Regenerate and Edit and resend (the Playground's) start again from a point in a thread. What came after that point
is not deleted: it is archived whole (store/versions.py) as a version of that point, so the thread itself stays
exactly the conversation the model sees and `messages.list` returns, and the user can flip back to it. Like adding
a message, neither may happen while a run works on the thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from assistants.errors import BadRequest, not_found
from assistants.ids import now


@dataclass
class Versions:
    """A thread's versions: at each point (message id, "" = the start) the number shown and how many there are."""

    points: dict[str, tuple[int, int]] = field(default_factory=dict)  # point -> (current number, total)
    archived_runs: set[str] = field(default_factory=set)  # runs whose tails are archived: not in the conversation


def _refuse_while_running(rt, thread_id: str, doing: str) -> None:
    active = rt._active_run(thread_id)
    if active is not None:
        raise BadRequest(f"Can't {doing} in {thread_id} while a run {active['id']} is active (status "
                         f"{active['status']}). Wait for it to finish or cancel it.", code="run_active")


def archive_from(rt, thread_id: str, message_id: str, run_ids: list[str] | tuple = ()) -> tuple[str, int]:
    """Take message `message_id` and everything after it out of the thread, as a version of the point before it;
    returns (point, the version's number). `run_ids`: runs that belong to that tail besides its messages' own."""
    rt.get_thread(thread_id)
    with rt.store.write():
        _refuse_while_running(rt, thread_id, "start again from a message")
        point = rt.store.tail_point(thread_id, message_id)
        if point is None:
            raise not_found("message", message_id)
        return point, rt.store.archive_tail(thread_id, point, run_ids, now())


def flip(rt, thread_id: str, point: str, number: int, run_ids: list[str] | tuple = ()) -> bool:
    """Show version `number` after `point`, archiving the tail shown now; False when that version is already shown
    (another tab flipped to it) or its point left the thread."""
    rt.get_thread(thread_id)
    with rt.store.write():
        _refuse_while_running(rt, thread_id, "switch versions")
        return rt.store.restore_version(thread_id, point, number, run_ids, now())


def versions_of(rt, thread_id: str) -> Versions:
    """Where the thread has versions, which one each point shows, and the runs of the archived ones."""
    found = Versions()
    archived: dict[str, set[int]] = {}
    for row in rt.store.message_versions(thread_id):
        archived.setdefault(row["point"], set()).add(row["number"])
        found.archived_runs.update(row["run_ids"])
    for point, numbers in archived.items():
        total = len(numbers) + 1
        found.points[point] = (next(n for n in range(1, total + 1) if n not in numbers), total)
    return found
