"""Cleaning PGlite's one shared session between tests, keeping the timescaledb extension."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

SETTINGS = "SELECT name, setting FROM pg_settings WHERE context IN ('user', 'superuser')"

# Every schema a test may have created: not a system schema, not owned by an extension.
_USER_SCHEMAS = r"""
SELECT n.nspname FROM pg_namespace n
 WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast', 'public')
   AND n.nspname NOT LIKE 'pg\_temp\_%' AND n.nspname NOT LIKE 'pg\_toast\_temp\_%'
   AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_namespace'::regclass
                     AND d.objid = n.oid AND d.deptype = 'e')
"""
_PUBLIC_RELATIONS = """
SELECT c.relname, c.relkind FROM pg_class c
 WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
   AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                     AND d.objid = c.oid AND d.deptype IN ('e', 'i', 'a'))
"""
_PUBLIC_ROUTINES = """
SELECT p.oid::regprocedure::text FROM pg_proc p
 WHERE p.pronamespace = 'public'::regnamespace
   AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                     AND d.objid = p.oid AND d.deptype = 'e')
"""
_PUBLIC_TYPES = """
SELECT t.oid::regtype::text FROM pg_type t
 WHERE t.typnamespace = 'public'::regnamespace AND t.typtype IN ('e', 'd', 'c', 'r', 'm')
   AND t.typrelid = 0
   AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_type'::regclass
                     AND d.objid = t.oid AND d.deptype = 'e')
"""
_RELKIND = {
    "r": "TABLE",
    "p": "TABLE",
    "v": "VIEW",
    "m": "MATERIALIZED VIEW",
    "f": "FOREIGN TABLE",
    "S": "SEQUENCE",
}


def reset_shared_session(conn: psycopg.Connection[Any], settings: dict[str, str]) -> None:
    """Drop everything a test created on PGlite, keeping the timescaledb extension.

    DROP EXTENSION is not an option there: the one shared session keeps the library loaded
    and CREATE EXTENSION then fails ("already been loaded with another version"). RESET ALL
    is not either: PGlite's reset values are its boot options (search_path=pg_catalog,
    client_min_messages=debug3), so settings are put back to the values seen at first use.
    """
    ident = sql.Identifier
    # continuous aggregates first, newest (hierarchical) first, so TimescaleDB removes their
    # materialization hypertables itself
    for schema, view in conn.execute(
        "SELECT user_view_schema, user_view_name FROM _timescaledb_catalog.continuous_agg"
        " ORDER BY mat_hypertable_id DESC"
    ).fetchall():
        conn.execute(sql.SQL("DROP MATERIALIZED VIEW IF EXISTS {} CASCADE").format(ident(schema, view)))
    for (schema,) in conn.execute(_USER_SCHEMAS).fetchall():
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(ident(schema)))
    for name, kind in conn.execute(_PUBLIC_RELATIONS).fetchall():
        conn.execute(
            sql.SQL("DROP {} IF EXISTS {} CASCADE").format(sql.SQL(_RELKIND[kind]), ident("public", name))
        )
    # regprocedure/regtype text is already a quoted, schema-qualified SQL name
    for (routine,) in conn.execute(_PUBLIC_ROUTINES).fetchall():
        conn.execute(sql.SQL("DROP ROUTINE IF EXISTS {} CASCADE").format(sql.SQL(routine)))
    for (type_name,) in conn.execute(_PUBLIC_TYPES).fetchall():
        conn.execute(sql.SQL("DROP TYPE IF EXISTS {} CASCADE").format(sql.SQL(type_name)))
    # jobs whose objects are gone already (add_job on a dropped procedure, for instance)
    conn.execute("SELECT delete_job(id) FROM _timescaledb_config.bgw_job WHERE id >= 1000")
    for name, value in conn.execute(SETTINGS).fetchall():
        if name in settings and settings[name] != value:
            conn.execute("SELECT set_config(%s, %s, false)", (name, settings[name]))
    left = conn.execute(
        "SELECT (SELECT count(*) FROM _timescaledb_catalog.hypertable),"
        " (SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace)"
    ).fetchone()
    if left != (0, 0):
        raise RuntimeError(f"PGlite reset left hypertables/relations behind: {left}")
