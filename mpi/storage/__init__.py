"""SQLAlchemy storage of the MPI (SQLite by default, PostgreSQL in production)."""
