"""Tasks only the integration tier (tests/integration/) uses."""

from __future__ import annotations

from qtasks_django import TaskExecutor, app, shared_task

__all__ = ["it_emails", "it_kwargs", "it_logs_then_fails", "it_produces", "it_unchecked", "it_yields"]


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


def _text(code_points):
    # Tasks build the hostile text themselves: enqueue refuses it as an argument.
    return "".join(map(chr, code_points))


@app.task(echo=True)
def it_produces(self, kind, code_points):
    """Make a text from ``code_points`` and hand it to the worker as ``kind`` says."""
    text = _text(code_points)
    if kind == "return":
        return text
    if kind == "return_key":
        return {text: 1}
    if kind == "raise":
        raise ValueError(text)
    if kind == "log":
        self.ctx.get_logger("it.produces").warning(text)
        return "logged"
    raise AssertionError(f"unknown kind {kind!r}")


@app.task
def it_yields(code_points):
    """A progress item holding the text, then a plain result."""
    yield _text(code_points)
    return "yielded"


class UncheckedExecutor(TaskExecutor):
    """A custom executor that skips the result check: the database is then the one to refuse."""

    async def decode(self, result):
        return result


@app.task(executor=UncheckedExecutor)
def it_unchecked(code_points):
    """Return a text the database may refuse, past the executor's own check."""
    return _text(code_points)
