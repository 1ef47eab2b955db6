-- A plan's name and description per locale ({"ru": {"name": "Месяц", "description": "..."}}),
-- shown to buyers in their language; `name` and `description` stay the default (issue 16).
ALTER TABLE plans ADD COLUMN translations jsonb NOT NULL DEFAULT '{}'::jsonb
    CHECK (jsonb_typeof(translations) = 'object');
