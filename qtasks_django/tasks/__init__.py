"""The task floor: the QTasks task model.

Definitions (``TaskExecSchema``), the app and its routers, ``shared_task``, task objects
and prebuilt calls, validation, the context, executors and middlewares, retry decisions,
results and waiting. It reaches the database only through the queue floor's
``DatabaseQueue`` (``QueueTasks.queue``), never through the models.

This package imports none of its modules: each is imported by name.
"""
