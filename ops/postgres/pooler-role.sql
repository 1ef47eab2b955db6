-- PgBouncer's login lookup role and function (fleet/pooler.py), as the superuser, idempotent:
--   psql -v pooler_role=botfleet_pooler -v pooler_password=... -f pooler-role.sql
-- (compose's db-roles one-shot runs it after roles.sql, with auth_lookup.sql mounted next to it).
SELECT format('CREATE ROLE %I LOGIN NOINHERIT', :'pooler_role')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'pooler_role') \gexec
SELECT format('ALTER ROLE %I LOGIN NOINHERIT PASSWORD %L', :'pooler_role', :'pooler_password') \gexec
\ir auth_lookup.sql
SELECT format('GRANT USAGE ON SCHEMA pgbouncer TO %I', :'pooler_role') \gexec
SELECT format('GRANT EXECUTE ON FUNCTION pgbouncer.get_auth(text) TO %I', :'pooler_role') \gexec
