"""Alembic environment: runs on the connection handed over by ``suite.db.migrate``."""

from alembic import context

from suite.db import Base

target_metadata = Base.metadata
connection = context.config.attributes.get("connection")
if connection is None:  # `alembic` CLI use: build an engine from the ini's sqlalchemy.url
    from sqlalchemy import create_engine

    from suite.db import resolve_url

    connection = create_engine(resolve_url(context.config.get_main_option("sqlalchemy.url")))\
        .connect()

context.configure(connection=connection, target_metadata=target_metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
