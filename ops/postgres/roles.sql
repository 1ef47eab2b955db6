-- botfleet's PostgreSQL roles, least privilege (issue 14). Run once per database as a superuser, and
-- again after changing a password (idempotent). docker-compose.yml runs it in its `db-roles` one-shot:
--
--   psql -v ON_ERROR_STOP=1 -v dbname=botfleet \
--        -v platform_role=botfleet -v platform_password=... \
--        -v provisioner_role=botfleet_provisioner -v provisioner_password=... -f roles.sql
--
-- platform_role    what the API, the sales bot, the lifecycle runner and the worker log in as
--                  (BOTFLEET_DATABASE_URL): no superuser, cannot create roles; owns the `control` schema.
-- provisioner_role what creates, migrates and drops tenant roles and schemas, used only by the worker,
--                  `botfleet migrate` and the tenant CLI (BOTFLEET_PROVISIONER_DATABASE_URL): no
--                  superuser; CREATEROLE, the database's owner (to create schemas and the btree_gist
--                  extension), pg_signal_backend and pg_read_all_stats (to see and end tenant sessions
--                  that outlive their limits).
--                  It owns the tenant schemas; it cannot read `control`.
-- Passwords are passed as psql variables and quoted by psql (:'...'), so any character works.

SELECT format('CREATE ROLE %I', :'platform_role')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'platform_role') \gexec
SELECT format('CREATE ROLE %I', :'provisioner_role')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'provisioner_role') \gexec

ALTER ROLE :"platform_role" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
  PASSWORD :'platform_password';
ALTER ROLE :"provisioner_role" LOGIN NOSUPERUSER NOCREATEDB CREATEROLE NOREPLICATION NOBYPASSRLS
  PASSWORD :'provisioner_password';
GRANT pg_signal_backend, pg_read_all_stats TO :"provisioner_role";
-- temp_file_limit is a superuser's parameter: the provisioner may put it on tenant roles (PostgreSQL 15+).
SELECT format('GRANT SET ON PARAMETER temp_file_limit TO %I', :'provisioner_role')
 WHERE current_setting('server_version_num')::int >= 150000 \gexec

ALTER DATABASE :"dbname" OWNER TO :"provisioner_role";
GRANT CONNECT, TEMPORARY ON DATABASE :"dbname" TO :"platform_role";
CREATE SCHEMA IF NOT EXISTS control AUTHORIZATION :"platform_role";
ALTER SCHEMA control OWNER TO :"platform_role";
