"""Schedules: tasks enqueued at cron times or intervals by the workers themselves (no beat)."""
