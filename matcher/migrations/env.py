"""Alembic environment: migrate the engine the service hands over (see ``matcher.migrations``)."""

from __future__ import annotations

from alembic import context

from matcher.models import Base

config = context.config
engine = config.attributes["engine"]

with engine.connect() as connection:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # SQLite alters a table by copying it (batch mode) and dropping the old one, which fails
        # while other tables' rows reference it and foreign keys are on. The pragma is a no-op
        # inside a transaction, so it is set before the migrations' transaction begins; the
        # references are checked before it commits, and the connection gets them back after.
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        connection.commit()
    try:
        with connection.begin():
            context.configure(
                connection=connection,
                target_metadata=Base.metadata,
                render_as_batch=sqlite,  # SQLite alters tables by copying
                compare_type=True,
            )
            with context.begin_transaction():
                context.run_migrations()
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                if broken:
                    raise RuntimeError(f"The migrations left broken references: {broken[:10]}")
    finally:
        if sqlite:
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")
            connection.commit()
