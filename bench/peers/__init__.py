"""``python -m bench --peers``: Celery, Dramatiq and Procrastinate measured beside qtasks_django.

Two sides that never import each other's libraries:

* in the bench's own virtualenv (Django): ``venvs`` builds each peer's virtualenv from its
  pinned ``requirements-<peer>.txt``, ``client`` runs the driver there and reads its JSON,
  ``table`` renders the peers table;
* in a peer's virtualenv: ``driver`` (``python -m bench.peers.driver <peer> <measure> ...``)
  times one measure against the peer's harness (``celery_app``, ``dramatiq_app``,
  ``procrastinate_app``), whose tasks use ``harness``.

This package imports nothing at import time, so both sides can load it.
"""
