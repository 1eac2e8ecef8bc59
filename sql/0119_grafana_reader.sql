-- A read-only role for dashboards (docs/dashboards.md): Grafana's PostgreSQL data source logs
-- in as tcpd_grafana. Created NOLOGIN and without a password: the password lives in .env only,
-- and the compose service grafana-role (monitoring profile) gives the role LOGIN and that
-- password (monitoring/grafana-role.sql). Roles belong to the whole cluster, not to one
-- database, so the role may already exist (another database of the cluster migrated first):
-- it is created only when missing, and the grants below are per database.
-- It reads every table and view of the schema public, including those created later by the
-- migrating role (default privileges): on the Apache edition the candle views call functions
-- that read raw_trades and the refresh state as the calling role. Its sessions are read-only
-- and their statements time out, so a dashboard cannot write or hold the database up.
-- A migrating role that may not create roles (no CREATEROLE) leaves a warning and grants
-- nothing: the ingester does not need this role, so its upgrade is not blocked by it.

DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'tcpd_grafana') THEN
        IF NOT EXISTS (
            SELECT FROM pg_roles WHERE rolname = current_user AND (rolsuper OR rolcreaterole)
        ) THEN
            RAISE WARNING 'role tcpd_grafana not created: % may not create roles', current_user
                USING HINT = 'docs/dashboards.md, "The read-only role": the SQL to run as a superuser';
            RETURN;
        END IF;
        BEGIN
            CREATE ROLE tcpd_grafana NOLOGIN;
            ALTER ROLE tcpd_grafana SET default_transaction_read_only = ON;
            ALTER ROLE tcpd_grafana SET statement_timeout = '30s';
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;  -- a migration of another database of the cluster created it meanwhile
        END;
    END IF;
    GRANT USAGE ON SCHEMA public TO tcpd_grafana;
    GRANT SELECT ON ALL TABLES IN SCHEMA public TO tcpd_grafana;
    ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO tcpd_grafana;
END;
$$;
