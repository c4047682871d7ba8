-- Bring the tables created by the original application up to the current schema.
-- Every statement is guarded, so on a fresh database (no such tables yet) this is a no-op
-- and schema.sql creates the tables in their current form.

ALTER TABLE IF EXISTS users
    ADD COLUMN IF NOT EXISTS created_at timestamptz NOT NULL DEFAULT now();

-- Deleting a client takes its widget with it; the constraint keeps its original name.
ALTER TABLE IF EXISTS client_widgets
    DROP CONSTRAINT IF EXISTS client_widgets_client_id_clients_id_fk,
    ADD CONSTRAINT client_widgets_client_id_clients_id_fk
        FOREIGN KEY (client_id) REFERENCES clients (id) ON DELETE CASCADE;

ALTER TABLE IF EXISTS session
    ADD COLUMN IF NOT EXISTS id uuid NOT NULL DEFAULT gen_random_uuid() UNIQUE,
    ADD COLUMN IF NOT EXISTS user_id varchar REFERENCES users (id) ON DELETE CASCADE,
    ADD COLUMN IF NOT EXISTS created_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN IF NOT EXISTS last_seen_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN IF NOT EXISTS user_agent text;
