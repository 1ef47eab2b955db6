-- Upgrading an installation whose platform role was a superuser that owned everything (compose files
-- before the least-privilege roles: POSTGRES_USER=botfleet). Run as a superuser AFTER roles.sql, with the
-- same role variables and the tenants' role prefix:
--
--   psql -v ON_ERROR_STOP=1 -v platform_role=botfleet -v provisioner_role=botfleet_provisioner \
--        -v tenant_prefix=tenant_ -f upgrade-roles.sql
--
-- Tenant schemas and everything in them pass to the provisioner (who creates, migrates and drops them
-- from now on; the next provision of each tenant re-grants its role what it needs); `control` stays the
-- platform role's; then the platform role loses superuser, CREATEROLE and CREATEDB. Idempotent.

SELECT format('ALTER SCHEMA %I OWNER TO %I', nspname, :'provisioner_role')
  FROM pg_namespace WHERE starts_with(nspname, :'tenant_prefix') \gexec

-- Tables, views and sequences that no column owns (those follow their table).
SELECT format('ALTER %s %I.%I OWNER TO %I',
              CASE c.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW'
                             WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'TABLE' END,
              n.nspname, c.relname, :'provisioner_role')
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE starts_with(n.nspname, :'tenant_prefix')
   AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
   AND NOT (c.relkind = 'S' AND EXISTS (
        SELECT FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
           AND d.deptype IN ('a', 'i'))) \gexec

SELECT format('ALTER ROUTINE %s OWNER TO %I', p.oid::regprocedure, :'provisioner_role')
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE starts_with(n.nspname, :'tenant_prefix') \gexec

SELECT format('ALTER %s %I.%I OWNER TO %I', CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END,
              n.nspname, t.typname, :'provisioner_role')
  FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
 WHERE starts_with(n.nspname, :'tenant_prefix') AND t.typtype IN ('e', 'd', 'r', 'm') \gexec

ALTER ROLE :"platform_role" NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
