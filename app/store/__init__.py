"""Persistence: SQLAlchemy tables, the event store, the unit of work."""
