"""What `pip install` builds: every package and data file, without setuptools warnings."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_the_build_ships_schema_migrations_and_document_without_warnings(tmp_path):
    build = subprocess.run(
        [sys.executable, "-W", "error", "-c",
         "from setuptools import setup; setup(script_args=['-q', 'build_py', '--build-lib', "
         f"{str(tmp_path)!r}])"],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert build.returncode == 0, build.stderr
    assert "absent from the `packages`" not in build.stderr
    shipped = {str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()}
    expected = {str(p.relative_to(ROOT)) for p in (ROOT / "chatconnect").rglob("*")
                if p.suffix in (".py", ".sql", ".yaml") and "__pycache__" not in p.parts}
    assert "chatconnect/migrations/0001_original_app_tables.sql" in expected
    assert expected - shipped == set()
