"""A small Django project that shows qtasks_django at work (see demo/tasks.py)."""
