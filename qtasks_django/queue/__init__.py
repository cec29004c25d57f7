"""The queue floor: task rows in and rows out.

Enqueue (insert and wake-up), claims, leases, release and rescue, finishes (single and
batched), progress, cancels, pruning, worker presence and registered-task rows. It knows
the models and the notifiers, never the task objects, the worker or the admin: it takes
values and uuids and returns records.

Its modules import the models at module level, so this package imports none of them:
``qtasks_django`` (the public face) is imported before Django's apps are ready, and
reaches the queue only when it is used (``QueueTasks.queue``).
"""
