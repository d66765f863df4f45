"""Reminder emails before an event starts, queued by a periodic job of the outbox workers."""
