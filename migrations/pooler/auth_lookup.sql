-- PgBouncer's login lookup (fleet/pooler.py): PgBouncer, logged in as a dedicated lookup role, asks
-- PostgreSQL for a tenant role's password secret (SCRAM) and checks the client's password against it,
-- so no password file has to follow provisioning. Run as a superuser (it reads pg_authid) in the
-- database the pooler serves; the lookup role gets USAGE and EXECUTE, nobody else (REVOKE below).
-- It answers only for plain login roles: a superuser, CREATEROLE, replication or BYPASSRLS role,
-- or one whose password expired, cannot log in through the pooler.
CREATE SCHEMA IF NOT EXISTS pgbouncer;
REVOKE ALL ON SCHEMA pgbouncer FROM PUBLIC;

CREATE OR REPLACE FUNCTION pgbouncer.get_auth(p_usename text)
RETURNS TABLE (usename name, passwd text)
LANGUAGE sql STABLE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT a.rolname, a.rolpassword
    FROM pg_catalog.pg_authid a
    WHERE a.rolname = p_usename
      AND a.rolcanlogin
      AND NOT a.rolsuper AND NOT a.rolcreaterole AND NOT a.rolreplication AND NOT a.rolbypassrls
      AND (a.rolvaliduntil IS NULL OR a.rolvaliduntil > now())
$$;

REVOKE ALL ON FUNCTION pgbouncer.get_auth(text) FROM PUBLIC;
