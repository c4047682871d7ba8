"""How the widget looks on a customer's page, beyond colour and position: one row per client
in widget_styles, changed by the owner and served in the public widget config."""

from .serialize import iso_utc
from .validation import boolean, integer, one_of, text

STYLE_CHECKS = {
    "theme": one_of("light", "dark", "auto"),
    "font_family": one_of("system", "sans-serif", "serif", "monospace"),
    "border_radius": integer(0, 24),
    "offset_x": integer(0, 200),
    "offset_y": integer(0, 200),
    "launcher_icon": one_of("chat", "help", "none"),
    "show_on_mobile": boolean,
    "header_text": text(0, 100),
}
STYLE_FIELDS = tuple(STYLE_CHECKS)


def public_style_json(row) -> dict:
    """The style as the widget reads it, from a row holding the STYLE_FIELDS."""
    return {name: row[name] for name in STYLE_FIELDS}


def style_json(row) -> dict:
    return {**public_style_json(row), "updated_at": iso_utc(row["updated_at"])}
