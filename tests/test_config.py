"""Settings: one line naming a bad one, and .env.example listing every one."""

import re
from pathlib import Path

import pytest
from dotenv import dotenv_values

from chatconnect.config import ConfigError, load_settings

ROOT = Path(__file__).parents[1]
REQUIRED = {"DATABASE_URL": "postgresql://u@localhost/db", "SECRET_KEY": "s"}


def settings_read_anywhere() -> set[str]:
    """Every variable the app, gunicorn's config and `make run` read."""
    sources = {
        ROOT / "chatconnect" / "config.py": r'environ(?:\.get\(|, )"([A-Z_]+)"',
        ROOT / "deploy" / "gunicorn.conf.py": r'(?:environ\.get\(|_positive\()"([A-Z_]+)"',
        ROOT / "chatconnect" / "devserver.py": r'environ\.get\("([A-Z_]+)"',
    }
    names = set()
    for path, pattern in sources.items():
        names |= set(re.findall(pattern, path.read_text()))
    return names


@pytest.mark.parametrize("level", ["TRACE", "verbose", "10"])
def test_an_unknown_log_level_names_the_setting(level):
    with pytest.raises(ConfigError, match=r"^LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, got "):
        load_settings({**REQUIRED, "LOG_LEVEL": level})


@pytest.mark.parametrize("level, expected", [("debug", "DEBUG"), (" Warning ", "WARNING"), ("", "INFO")])
def test_log_levels_in_any_case(level, expected):
    assert load_settings({**REQUIRED, "LOG_LEVEL": level})["LOG_LEVEL"] == expected


def test_env_example_and_the_readme_list_every_setting():
    names = settings_read_anywhere()
    assert {"DATABASE_URL", "PORT", "GUNICORN_WORKERS", "LOG_LEVEL"} <= names  # the search works
    example = (ROOT / ".env.example").read_text()
    listed = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", example, re.MULTILINE))
    assert names - listed == set()
    readme = (ROOT / "README.md").read_text()
    assert {name for name in names if f"`{name}`" not in readme} == set()


def test_env_example_as_dot_env_leaves_make_run_on_its_own_database_in_development():
    values = {k: v for k, v in dotenv_values(ROOT / ".env.example").items() if v}
    assert "DATABASE_URL" not in values and "CHATCONNECT_ENV" not in values
    # What `make run` does with it: its own cluster's URL, development mode.
    settings = load_settings({**values, "DATABASE_URL": "postgresql://chatconnect@/chatconnect",
                              "CHATCONNECT_ENV": "development"})
    assert settings["ENV"] == "development"
