"""The database: SQLAlchemy tables, Alembic migrations, connection URLs (SQLite or PostgreSQL)."""
