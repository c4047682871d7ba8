"""The client_widgets table: one row of widget settings per client."""

# updated_at is `timestamp without time zone` holding UTC (the original table's type).
INSERT_DEFAULT_WIDGET = """
INSERT INTO client_widgets (client_id) VALUES (%(client_id)s)
RETURNING client_id, primary_color, position, welcome_message, widget_name, updated_at"""

SELECT_WIDGET_FOR_OWNER = """
SELECT w.client_id, w.primary_color, w.position, w.welcome_message, w.widget_name, w.updated_at
FROM client_widgets w JOIN clients c ON c.id = w.client_id
WHERE w.client_id = %(client_id)s AND c.user_id = %(owner_id)s"""

# Fields left out are NULL here and keep their value; updated_at moves only when a value
# actually changes. In SET, w.* are the values before the update.
UPDATE_WIDGET_FOR_OWNER = """
UPDATE client_widgets w
SET primary_color = coalesce(%(primary_color)s, w.primary_color),
    position = coalesce(%(position)s, w.position),
    welcome_message = coalesce(%(welcome_message)s, w.welcome_message),
    widget_name = coalesce(%(widget_name)s, w.widget_name),
    updated_at = CASE
        WHEN (coalesce(%(primary_color)s, w.primary_color), coalesce(%(position)s, w.position),
              coalesce(%(welcome_message)s, w.welcome_message),
              coalesce(%(widget_name)s, w.widget_name))
             IS DISTINCT FROM (w.primary_color, w.position, w.welcome_message, w.widget_name)
        THEN now() ELSE w.updated_at END
FROM clients c
WHERE w.client_id = c.id AND c.id = %(client_id)s AND c.user_id = %(owner_id)s
RETURNING w.client_id, w.primary_color, w.position, w.welcome_message, w.widget_name,
          w.updated_at"""

WIDGET_FIELDS = ("primary_color", "position", "welcome_message", "widget_name")


class WidgetRepository:
    def __init__(self, conn):
        self.conn = conn

    def create(self, client_id: str):
        """The widget row of a new client, with the default settings."""
        return self.conn.execute(INSERT_DEFAULT_WIDGET, {"client_id": client_id}).fetchone()

    def get_for_owner(self, client_id: str, owner_id: str):
        return self.conn.execute(SELECT_WIDGET_FOR_OWNER,
                                 {"client_id": client_id, "owner_id": owner_id}).fetchone()

    def update(self, client_id: str, owner_id: str, changes: dict):
        """Apply `changes` (any of WIDGET_FIELDS); None if the client is not the owner's."""
        if not changes:
            return self.get_for_owner(client_id, owner_id)
        return self.conn.execute(UPDATE_WIDGET_FOR_OWNER, {
            "client_id": client_id, "owner_id": owner_id,
            **{name: changes.get(name) for name in WIDGET_FIELDS}}).fetchone()
