-- An owner's language is either chosen (/language in the sales bot: kept whatever their Telegram app
-- says) or the one their app reported last (followed when it changes).
ALTER TABLE owners ADD COLUMN chosen boolean NOT NULL DEFAULT false;
