"""Tasks only the integration tier (tests/integration/) uses."""

from __future__ import annotations

from qtasks_django import app, shared_task

__all__ = ["it_emails", "it_kwargs", "it_logs_then_fails"]


@app.task(queue="it_emails", tags=["mail"])
def it_emails(address):
    """A task declared on its own queue."""
    return f"sent to {address}"


@shared_task
def it_kwargs(a, *, b=2):
    return {"a": a, "b": b}


@app.task(echo=True)
def it_logs_then_fails(self):
    """Log through ``ctx.get_logger`` at several levels, then fail: the lines are kept anyway."""
    log = self.ctx.get_logger("it.custom")
    log.info("first %s", 1)
    log.warning("second")
    log.debug("not stored: below the logger's level")
    raise ValueError("after logging")


@app.task
def it_returns_nul():
    """PostgreSQL's jsonb refuses \\u0000: the result cannot be stored as it is."""
    return "a\x00b"
