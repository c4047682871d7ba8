-- Security hardening of the account tables. Every statement is guarded: on a fresh database
-- (no tables yet) this is a no-op and schema.sql creates the tables in their current form.

-- A password change bumps the user's credentials_version; a session or token is valid only
-- while the version it was created with is still the user's. Existing rows get version 1.
ALTER TABLE IF EXISTS users
    ADD COLUMN IF NOT EXISTS credentials_version integer NOT NULL DEFAULT 1;
ALTER TABLE IF EXISTS session
    ADD COLUMN IF NOT EXISTS credentials_version integer NOT NULL DEFAULT 1;
ALTER TABLE IF EXISTS api_tokens
    ADD COLUMN IF NOT EXISTS credentials_version integer NOT NULL DEFAULT 1;

-- One normalisation of usernames, the same in Python and in every locale: ASCII letters folded
-- to lower case, nothing else. Names unique under lower() are unique under this too. The new
-- index is built before the old one goes, so the names are never left unguarded.
DO $$
BEGIN
    IF to_regclass('users') IS NOT NULL THEN
        CREATE UNIQUE INDEX IF NOT EXISTS users_username_key_unique ON users
            (translate(username, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz'));
        DROP INDEX IF EXISTS users_username_lower_unique;
    END IF;
END
$$;
