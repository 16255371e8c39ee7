"""The run status machine: every run and step status change, as a compare-and-set, with its event.

It sits below the worker: it knows the store and the event log, never the engine.
"""

from __future__ import annotations

import time

from assistants.ids import now
from assistants.runs.events import EventHub
from assistants.store import Store
from assistants.store.interface import STEP_USAGE

TERMINAL = ("completed", "failed", "cancelled", "incomplete", "expired")

# The allowed run transitions, written down once: status -> the statuses it may become.
RUN_TRANSITIONS: dict[str, tuple[str, ...]] = {
    "queued": ("in_progress", "cancelled", "expired", "failed"),
    "in_progress": ("requires_action", "completed", "incomplete", "failed", "cancelling", "cancelled"),
    "requires_action": ("queued", "cancelled", "expired", "failed"),
    "cancelling": ("cancelled", "failed"),
}
STEP_TRANSITIONS: dict[str, tuple[str, ...]] = {
    "in_progress": ("completed", "failed", "cancelled", "expired"),
}


def sources(to: str, table: dict[str, tuple[str, ...]] = RUN_TRANSITIONS) -> list[str]:
    """The statuses from which `to` may be reached."""
    return [src for src, targets in table.items() if to in targets]


def public(obj: dict | None) -> dict | None:
    """The wire object: engine-private keys (leading underscore) removed."""
    if obj is None:
        return None
    return {k: v for k, v in obj.items() if not k.startswith("_")}


class StatusMachine:
    """Moves runs and steps between statuses; a move that lost a race returns None and changes nothing."""

    def __init__(self, store: Store, hub: EventHub, owner: str, lease_s: float):
        self.store = store
        self.hub = hub
        self.owner = owner
        self.lease_s = lease_s

    def lease_until(self) -> float:
        return time.time() + self.lease_s

    # -- the one compare-and-set -------------------------------------------------------------
    def move(self, run_id: str, to: str, *, mine: bool = False, lease_before: float | None = None,
             event: bool = True, **fields) -> dict | None:
        """Set the run's status to `to` if its current status allows it (and, `mine`, we hold its lease)."""
        where = {"status": sources(to)}
        if mine:
            where["owner"] = self.owner
        if to in TERMINAL:  # a run's usage is the sum of its steps', written once it ends
            fields = {**fields, "usage": STEP_USAGE, "_lease_until": None}
        with self.store.write():
            run = self.store.update_fields("runs", run_id, {"status": to, **fields}, lease_before=lease_before,
                                           returning=True, **where)
            if run is None:
                return None
            if event:
                self.hub.publish(run_id, f"thread.run.{to}", public(run))
        return run

    def move_step(self, step: dict, to: str, **fields) -> bool:
        """End an in-progress step (completed, failed, cancelled, expired) and announce it."""
        with self.store.write():
            changed = self.store.update_fields("run_steps", step["id"], {"status": to, **fields},
                                               status=sources(to, STEP_TRANSITIONS))
            if changed:
                step.update(status=to, **fields)
                self.hub.publish(step["run_id"], f"thread.run.step.{to}", public(step))
        return bool(changed)

    def end_reply(self, message: dict, message_fields: dict, step: dict, **step_fields) -> dict:
        """A reply's end: its message's fields and its in-progress step `completed` in one round trip, announced in
        that order; the message as stored (our copy with the fields if it is gone)."""
        to = "completed"
        stored, changed = self.store.update_each([
            ("messages", message["id"], message_fields, {}, True),
            ("run_steps", step["id"], {"status": to, **step_fields}, {"status": sources(to, STEP_TRANSITIONS)}, False),
        ])
        with self.store.write():
            message = stored or {**message, **message_fields}
            self.hub.publish(step["run_id"], f"thread.message.{message_fields.get('status', 'completed')}",
                             public(message))
            if changed:
                step.update(status=to, **step_fields)
                self.hub.publish(step["run_id"], f"thread.run.step.{to}", public(step))
        return message

    # -- transitions with a name -------------------------------------------------------------
    def claim(self, run_id: str, queued: dict | None = None) -> dict | None:
        """queued -> in_progress for this process, with a fresh lease; None if another worker or a cancel won.

        `queued`: the run as this process queued it (its thread and first start), else it is read; either way the
        move is a compare-and-set on the stored status."""
        started = queued if queued is not None else self.store.get("runs", run_id)
        if started is None or started["status"] != "queued":
            return None
        # started_at is kept from the first claim (a run resumed after tool outputs started then).
        with self.store.write(started["thread_id"]):  # the run's own row and events: a write about its thread
            return self.move(run_id, "in_progress", mine=True, started_at=started.get("started_at") or now(),
                             _lease_until=self.lease_until())

    def requeue_with_outputs(self, run_id: str, apply_outputs) -> dict | None:
        """requires_action -> queued (submit_tool_outputs): exactly one of concurrent submitters wins."""
        with self.store.write():
            run = self.move(run_id, "queued", event=False, required_action=None, _owner=self.owner,
                            _lease_until=self.lease_until())
            if run is None:
                return None
            apply_outputs(run)
            self.hub.publish(run_id, "thread.run.queued", public(run))
        return run

    def request_cancel(self, run_id: str) -> dict | None:
        """A cancel from anyone: a waiting or queued run ends at once, a working one becomes `cancelling`."""
        with self.store.write():
            run = self.store.get("runs", run_id)
            if run is None or run["status"] in TERMINAL or run["status"] == "cancelling":
                return None
            if run["status"] in ("requires_action", "queued"):
                return self.finish_cancel(run_id, from_status=run["status"])
            return self.move(run_id, "cancelling")

    def finish_cancel(self, run_id: str, from_status: str | None = None) -> dict | None:
        """End the run `cancelled`: its open steps and reply end with it, in the same transaction."""
        with self.store.write():
            current = self.store.get("runs", run_id)
            if current is None or current["status"] not in sources("cancelled"):
                return None
            if from_status is not None and current["status"] != from_status:
                return None
            self.close_open_parts(run_id, "cancelled")
            return self.move(run_id, "cancelled", cancelled_at=now(), expires_at=None, required_action=None)

    def fail(self, run_id: str, code: str, message: str, *, mine: bool = True,
             lease_before: float | None = None) -> dict | None:
        """End the run `failed` with a last_error a person can act on."""
        error = {"code": code, "message": message}
        with self.store.write():
            run = self.move(run_id, "failed", mine=mine, lease_before=lease_before, event=False, failed_at=now(),
                            expires_at=None, required_action=None, last_error=error)
            if run is None:
                return None
            self.close_open_parts(run_id, "failed", error)
            self.hub.publish(run_id, "thread.run.failed", public(run))
        return run

    def expire(self, run_id: str) -> dict | None:
        """A queued or waiting run past `expires_at` ends `expired`, and so do its open steps."""
        with self.store.write():
            run = self.store.get("runs", run_id)
            if run is None or run["status"] not in ("queued", "requires_action"):
                return None
            if not run.get("expires_at") or run["expires_at"] >= now():
                return None
            for step in self.store.all("run_steps", run_id=run_id):
                if step["status"] == "in_progress":
                    self.move_step(step, "expired", expired_at=now())
            return self.move(run_id, "expired", expires_at=None, required_action=None, last_error=None)

    def close_open_parts(self, run_id: str, how: str, error: dict | None = None) -> None:
        """Steps and messages still in progress end with the run (failed/cancelled/incomplete)."""
        ts = now()
        for step in self.store.all("run_steps", run_id=run_id):
            if step["status"] != "in_progress":
                continue
            to = "failed" if how == "failed" else "cancelled"
            fields = {f"{to}_at": ts}
            if error and to == "failed":
                fields["last_error"] = {"code": "server_error" if error["code"] != "rate_limit_exceeded" else error["code"],
                                        "message": error["message"]}
            self.move_step(step, to, **fields)
        for msg in self.store.all("messages", run_id=run_id):
            if msg["status"] != "in_progress":
                continue
            fields = {"status": "incomplete", "incomplete_at": ts,
                      "incomplete_details": {"reason": "run_failed" if how == "failed" else "run_cancelled"}}
            if self.store.update_fields("messages", msg["id"], fields, status="in_progress"):
                msg.update(fields)
                self.hub.publish(run_id, "thread.message.incomplete", public(msg))
