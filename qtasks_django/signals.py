"""Django signals sent at each step of a task's life.

The sender is the task name; every signal also passes ``uuid``. Receivers run in
the process and thread that made the change: ``task_enqueued`` in the caller,
inside its transaction (like ``post_save``); the others in the worker, after the
change is written. A receiver that raises is logged and never stops a worker.
"""

from __future__ import annotations

from django.dispatch import Signal

#: A task row was written (``add_task``, ``add_tasks``, a retry's successor). Args: ``uuid``, ``task``.
task_enqueued = Signal()

#: A worker claimed the task and is about to run it. Args: ``uuid``, ``attempt``, ``worker_id``.
task_started = Signal()

#: An attempt failed and a successor was enqueued. Args: ``uuid``, ``retry_uuid``, ``traceback``.
task_retried = Signal()

#: The task ended (success, error or cancel). Args: ``uuid``, ``status``, ``returning``, ``traceback``.
task_finished = Signal()
