"""The ceiling: a bare Flask app that answers every GET with constant JSON.

`make bench` serves it with the same gunicorn settings as ChatConnect and loads it with the
requests of the widget case, so the ratio of a case to this one is the share of the
framework-and-server maximum the real code reaches on the same machine in the same run."""

from flask import Flask

WIDGET = {
    "widget_name": "Site 1 support",
    "primary_color": "#3b82f6",
    "position": "bottom-right",
    "welcome_message": "Hi! Questions about Site 1? We usually answer within a few minutes.",
}

app = Flask(__name__)


@app.get("/", defaults={"path": ""})
@app.get("/<path:path>")
def constant(path):
    return WIDGET
