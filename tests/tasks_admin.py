"""Tasks the admin's tests run with a real worker (tests/browser/, tests/integration/test_admin*)."""

from __future__ import annotations

import time
from pathlib import Path

from qtasks_django import app

__all__ = ["admin_fails_once", "admin_report", "admin_steps", "admin_waits"]


@app.task(tags=["admin", "reports"], description="Build a report, one step at a time.")
def admin_steps(steps, seconds_per_step):
    """A generator whose items drive the admin's progress bar: ``{"done": i, "total": steps}``."""
    for done in range(1, steps + 1):
        time.sleep(seconds_per_step)
        yield {"done": done, "total": steps, "note": f"step {done} of {steps}"}
    return {"steps": steps}


@app.task(echo=True)
def admin_waits(self, seconds):
    """Log a line, then sleep in ``ctx.sleep`` (which a cancel interrupts)."""
    self.ctx.get_logger().info("waiting %s s", seconds)
    self.ctx.sleep(seconds)
    return "waited"


@app.task(tags=["admin"])
def admin_fails_once(marker, note):
    """Fail the first time (leaving ``marker`` behind), succeed on any later run."""
    path = Path(marker)
    if not path.exists():
        path.write_text("failed once")
        raise ValueError(f"first run fails: {note}")
    return {"note": note, "ran": "again"}


@app.task(echo=True, retry=1, tags=["admin", "reports"])
def admin_report(self, user_id, *, lang="en"):
    """A report with a log line and a nested task, for the documentation's screenshots."""
    log = self.ctx.get_logger()
    log.info("building report for user %s", user_id)
    child = self.add_task("add", user_id, 1)
    log.warning("slow data source, took %.1f s", 0.8)
    return {"user_id": user_id, "lang": lang, "rows": 42, "child": str(child.uuid)}
