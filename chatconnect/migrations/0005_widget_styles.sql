-- Every client created before widget styles existed (by an older release or by the original
-- application) gets its style row with the defaults. On a fresh database there are no
-- clients yet, and schema.sql creates the table.
DO $$
BEGIN
    IF to_regclass('clients') IS NOT NULL THEN
        CREATE TABLE IF NOT EXISTS widget_styles (
            client_id varchar PRIMARY KEY REFERENCES clients (id) ON DELETE CASCADE,
            theme text NOT NULL DEFAULT 'light' CHECK (theme IN ('light', 'dark', 'auto')),
            font_family text NOT NULL DEFAULT 'system'
                CHECK (font_family IN ('system', 'sans-serif', 'serif', 'monospace')),
            border_radius integer NOT NULL DEFAULT 12 CHECK (border_radius BETWEEN 0 AND 24),
            offset_x integer NOT NULL DEFAULT 20 CHECK (offset_x BETWEEN 0 AND 200),
            offset_y integer NOT NULL DEFAULT 20 CHECK (offset_y BETWEEN 0 AND 200),
            launcher_icon text NOT NULL DEFAULT 'chat'
                CHECK (launcher_icon IN ('chat', 'help', 'none')),
            show_on_mobile boolean NOT NULL DEFAULT true,
            header_text text NOT NULL DEFAULT '' CHECK (char_length(header_text) <= 100),
            updated_at timestamptz NOT NULL DEFAULT now()
        );
        INSERT INTO widget_styles (client_id)
        SELECT id FROM clients
        ON CONFLICT (client_id) DO NOTHING;
    END IF;
END
$$;
