"""The Celery app: ``celery -A workers worker`` and ``celery -A workers beat``."""

from __future__ import annotations

from workers import archiving, jobs, observability, webhooks
from workers.celery_app import celery

__all__ = ["archiving", "celery", "jobs", "observability", "webhooks"]
