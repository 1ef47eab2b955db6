-- The API caches tenants in memory (control_plane/tenant_cache.py): every change to a tenant row tells
-- the API processes which slug to forget (LISTEN botfleet_tenants); a TRUNCATE tells them to forget
-- every tenant ('*', which no slug contains). Notifications are sent at commit, so a listener never
-- forgets a row before the change is visible.
CREATE FUNCTION notify_tenant_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        PERFORM pg_notify('botfleet_tenants', '*');
        RETURN NULL;
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM pg_notify('botfleet_tenants', OLD.slug);
    END IF;
    IF TG_OP = 'INSERT' OR (TG_OP = 'UPDATE' AND NEW.slug IS DISTINCT FROM OLD.slug) THEN
        PERFORM pg_notify('botfleet_tenants', NEW.slug);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER tenants_notify AFTER INSERT OR UPDATE OR DELETE ON tenants
    FOR EACH ROW EXECUTE FUNCTION notify_tenant_change();
CREATE TRIGGER tenants_notify_truncate AFTER TRUNCATE ON tenants
    FOR EACH STATEMENT EXECUTE FUNCTION notify_tenant_change();
