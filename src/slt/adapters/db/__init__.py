"""The database: SQLAlchemy tables, Alembic migrations, connection URLs (SQLite or PostgreSQL)."""

import logging

# Alembic narrates every step, down to loading its plugins on import, at INFO; our commands
# report the outcome themselves. Set before any submodule imports alembic.
logging.getLogger("alembic").setLevel(logging.WARNING)
