"""The widget_styles table: one row of style settings per client, created with it."""

from psycopg import sql

from ..widget_style import STYLE_FIELDS

COLUMNS = sql.SQL(", ").join(sql.Identifier("s", name) for name in (*STYLE_FIELDS, "updated_at"))

INSERT_DEFAULT_STYLE = sql.SQL("""
INSERT INTO widget_styles AS s (client_id) VALUES (%(client_id)s)
RETURNING {columns}""").format(columns=COLUMNS)

SELECT_STYLE_FOR_OWNER = sql.SQL("""
SELECT {columns}
FROM widget_styles s JOIN clients c ON c.id = s.client_id
WHERE s.client_id = %(client_id)s AND c.user_id = %(owner_id)s""").format(columns=COLUMNS)

# Fields left out are NULL here and keep their value (none is nullable); updated_at moves only
# when a value actually changes. In SET, s.* are the values before the update.
NEW_VALUES = sql.SQL(", ").join(
    sql.SQL("coalesce({param}, {column})").format(param=sql.Placeholder(name),
                                                   column=sql.Identifier("s", name))
    for name in STYLE_FIELDS)
OLD_VALUES = sql.SQL(", ").join(sql.Identifier("s", name) for name in STYLE_FIELDS)
ASSIGNMENTS = sql.SQL(", ").join(
    sql.SQL("{column} = coalesce({param}, {qualified})").format(
        column=sql.Identifier(name), param=sql.Placeholder(name),
        qualified=sql.Identifier("s", name))
    for name in STYLE_FIELDS)
UPDATE_STYLE_FOR_OWNER = sql.SQL("""
UPDATE widget_styles s
SET {assignments},
    updated_at = CASE WHEN ({new_values}) IS DISTINCT FROM ({old_values})
                      THEN now() ELSE s.updated_at END
FROM clients c
WHERE s.client_id = c.id AND c.id = %(client_id)s AND c.user_id = %(owner_id)s
RETURNING {columns}""").format(assignments=ASSIGNMENTS, new_values=NEW_VALUES,
                               old_values=OLD_VALUES, columns=COLUMNS)


class WidgetStyleRepository:
    def __init__(self, conn):
        self.conn = conn

    def create(self, client_id: str):
        """The style row of a new client, with the default settings."""
        return self.conn.execute(INSERT_DEFAULT_STYLE, {"client_id": client_id}).fetchone()

    def get_for_owner(self, client_id: str, owner_id: str):
        return self.conn.execute(SELECT_STYLE_FOR_OWNER,
                                 {"client_id": client_id, "owner_id": owner_id}).fetchone()

    def update(self, client_id: str, owner_id: str, changes: dict):
        """Apply `changes` (any of STYLE_FIELDS); None if the client is not the owner's."""
        if not changes:
            return self.get_for_owner(client_id, owner_id)
        return self.conn.execute(UPDATE_STYLE_FOR_OWNER, {
            "client_id": client_id, "owner_id": owner_id,
            **{name: changes.get(name) for name in STYLE_FIELDS}}).fetchone()
