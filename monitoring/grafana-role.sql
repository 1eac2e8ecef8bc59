-- Run by the compose service grafana-role (monitoring profile) with psql, after the migrations:
-- gives tcpd_grafana (sql/0119_grafana_reader.sql) LOGIN and the password from .env
-- (TCPD_GRAFANA_DB_PASSWORD). \getenv reads it from the environment, so it is never on a command
-- line; :'password' quotes it as a literal. Safe to run again: the password is set anew.
\set ON_ERROR_STOP on
\set password ''
\getenv password TCPD_GRAFANA_DB_PASSWORD
SELECT :'password' <> '' AS password_given \gset
\if :password_given
ALTER ROLE tcpd_grafana LOGIN PASSWORD :'password';
\else
DO $$ BEGIN RAISE EXCEPTION 'TCPD_GRAFANA_DB_PASSWORD is empty: set it in .env (docs/dashboards.md)'; END $$;
\endif
