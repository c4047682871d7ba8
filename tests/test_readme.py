"""The README's walkthrough, run as a reader runs it: in order, against `make run`'s server.

The blocks fenced as ```` ```sh walkthrough ```` are the walkthrough. Each `http` or `curl`
command in them runs as written (with the server's port for 8000), and its answer is checked
against the sample answer below it: the status it starts with (`# 201 …`,
`# HTTP/1.1 304 …`; any 2xx when it shows none), every JSON field it shows, and its
placeholders. A sample value with an ellipsis (`"id": "f9d3…"`, `ETag: "5c1e…"`) is what the
reader copies from the answer, so later commands get the real value in its place.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
from dotenv import dotenv_values
from psycopg import sql

from .conftest import TRUNCATE_TABLES, with_database

# As on a new database: message ids start at 1 again.
TRUNCATE_AND_RESTART = TRUNCATE_TABLES.replace("' CASCADE'", "' RESTART IDENTITY CASCADE'")
assert "RESTART IDENTITY" in TRUNCATE_AND_RESTART
from .test_devserver import free_port

ROOT = Path(__file__).parents[1]
README = ROOT / "README.md"
BLOCK = re.compile(r"^```sh walkthrough\n(.*?)^```", re.MULTILINE | re.DOTALL)
ANSWER_START = re.compile(r"(?:HTTP/[\d.]+ )?\d{3}\b|[{\[]")
STATUS = re.compile(r"(?:HTTP/[\d.]+\s+)?(\d{3})\b")
HEADER = re.compile(r"([A-Za-z][A-Za-z0-9-]*): (.+)")
ELLIPSIS = "…"
# Runs the commands as written, showing the status line and headers of every answer.
PRELUDE = """
http() { command http --ignore-stdin --pretty=none --print=hb "$@"; }
curl() { command curl -sS -i "$@"; }
"""
# The test starts the server, and runs http from the virtualenv.
DONE_BY_THE_TEST = ("make run", ". .venv/bin/activate")


class WalkthroughError(AssertionError):
    pass


@dataclass
class Step:
    line: int
    command: str
    answer: list[str] = field(default_factory=list)

    @property
    def expected_status(self) -> int | None:
        match = STATUS.match(self.answer[0]) if self.answer else None
        return int(match[1]) if match else None


def walkthrough_steps(readme: str) -> list[Step]:
    steps = []
    for block in BLOCK.finditer(readme):
        first_line = readme.count("\n", 0, block.start(1)) + 1
        step, in_answer = None, False
        lines = block[1].splitlines()
        index = 0
        while index < len(lines):
            number, text = first_line + index, lines[index].strip()
            index += 1
            if not text:
                step, in_answer = None, False
            elif text.startswith("#"):
                comment = text[1:].strip()
                if step is not None and (in_answer or (not step.answer and ANSWER_START.match(comment))):
                    step.answer.append(comment)
                    in_answer = True
                else:
                    step, in_answer = None, False  # prose
            else:
                command = text.split("  #")[0].rstrip()  # a trailing remark is not part of it
                while command.endswith("\\") and index < len(lines):
                    command = command[:-1] + " " + lines[index].strip()
                    index += 1
                step, in_answer = Step(number, command), False
                steps.append(step)
    return steps


def sample_json(answer: list[str]):
    """The JSON value a sample answer shows, where `…` stands for fields left out."""
    text = " ".join(answer)
    start = min((i for i in (text.find("{"), text.find("[")) if i >= 0), default=-1)
    if start < 0:
        return None
    text = re.sub(r",\s*" + ELLIPSIS + r"(?=\s*[}\]])", "", text[start:])
    text = re.sub(r"([{\[])\s*" + ELLIPSIS + r"\s*(?=[}\]])", r"\1", text)
    return json.JSONDecoder().raw_decode(text)[0]


def compare(sample, real, where, placeholders):
    """Check every field the sample shows; learn what each placeholder stands for."""
    if isinstance(sample, dict):
        if not isinstance(real, dict):
            raise WalkthroughError(f"{where}: the README shows an object, the answer has {real!r}")
        for key, value in sample.items():
            if key not in real:
                raise WalkthroughError(f"{where}: the README shows {key!r}, the answer has no such field")
            compare(value, real[key], f"{where}.{key}", placeholders)
    elif isinstance(sample, list):
        if not isinstance(real, list) or len(real) < len(sample):
            raise WalkthroughError(f"{where}: the README shows {len(sample)} items, the answer has {real!r}")
        for position, value in enumerate(sample):
            compare(value, real[position], f"{where}[{position}]", placeholders)
    elif isinstance(sample, str) and ELLIPSIS in sample:
        if sample != ELLIPSIS:
            placeholders[sample] = str(real)
    elif sample != real:
        raise WalkthroughError(f"{where}: the README shows {sample!r}, the answer has {real!r}")


def parse_answer(output: str):
    match = re.search(r"^HTTP/[\d.]+ (\d{3})", output, re.MULTILINE)
    if not match:
        return None, {}, None
    head, _, body = output[match.start():].replace("\r\n", "\n").partition("\n\n")
    headers = {}
    for line in head.splitlines()[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    try:
        document = json.loads(body) if body.strip()[:1] in ("{", "[") else None
    except ValueError:
        document = None
    return int(match[1]), headers, document


def run_walkthrough(readme: str, port: int, workdir: Path) -> list[Step]:
    """Run every step in order; raise WalkthroughError at the first answer the README does not
    describe. Returns the steps that ran."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HTTPIE", "CC_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["HTTPIE_CONFIG_DIR"] = str(workdir / "httpie")
    placeholders: dict[str, str] = {}
    ran = []
    for step in walkthrough_steps(readme):
        command = step.command
        for sample in sorted(placeholders, key=len, reverse=True):
            command = command.replace(sample, placeholders[sample])
        command = command.replace(":8000", f":{port}")
        where = f"README.md line {step.line}: `{step.command}`"
        if ELLIPSIS in command:
            raise WalkthroughError(f"{where}: no earlier answer says what to put for {command!r}")
        if command in DONE_BY_THE_TEST:
            continue
        if export := re.fullmatch(r"export (\w+)=(\S+)", command):
            env[export[1]] = export[2].strip("'\"")
            continue
        if command.split()[0] not in ("http", "curl"):
            raise WalkthroughError(f"{where}: the walkthrough runs only http, curl and export")
        result = subprocess.run(["bash", "-c", PRELUDE + command], cwd=workdir, env=env,
                                capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
        status, headers, document = parse_answer(result.stdout)
        if status is None:
            raise WalkthroughError(f"{where}: no HTTP answer\n{result.stdout}{result.stderr}")
        expected = step.expected_status
        if expected is None and not 200 <= status < 300 or expected not in (None, status):
            raise WalkthroughError(f"{where}: answered {status}, the README says "
                                   f"{expected or '2xx'}\n{result.stdout[:3000]}")
        for line in step.answer:
            if (header := HEADER.fullmatch(line)) and header[1].lower() in headers:
                real = headers[header[1].lower()]
                if ELLIPSIS in header[2]:
                    placeholders[header[2]] = real
                elif header[2] != real:
                    raise WalkthroughError(f"{where}: the README shows {header[1]}: {header[2]}, "
                                           f"the answer has {real}")
        shown = sample_json(step.answer)
        if shown is not None:
            compare(shown, document, where, placeholders)
        ran.append(step)
    return ran


@pytest.fixture(scope="module")
def service(database_url):
    """The server as `make run` starts it, with .env.example as .env, on a database of its own."""
    dbname = f"readme_{os.getpid()}"
    url = with_database(database_url, dbname)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if k not in ("TEST_DATABASE_URL", "CHATCONNECT_ENV", "SECRET_KEY")}
    env.update({k: v for k, v in dotenv_values(ROOT / ".env.example").items() if v})
    env.update(DATABASE_URL=url, PORT=str(port), GUNICORN_WORKERS="2")
    server = subprocess.Popen([sys.executable, "-m", "chatconnect.devserver"], cwd=ROOT, env=env,
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output = []
        for line in server.stdout:
            output.append(line)
            if "Press Ctrl-C to stop." in line:
                break
        else:
            pytest.fail("make run did not start:\n" + "".join(output))
        yield port, url
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))


@pytest.fixture
def fresh_service(service, tmp_path):
    port, url = service
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(TRUNCATE_AND_RESTART)
    return port, tmp_path


def test_the_walkthrough_runs_as_written(fresh_service):
    port, workdir = fresh_service
    ran = run_walkthrough(README.read_text(), port, workdir)
    commands = " ".join(step.command for step in ran)
    # The walkthrough goes from signing up to a visitor chatting with the team.
    for route in ("/api/auth/register", "/api/auth/login", "/api/auth/tokens", "/api/auth/sessions",
                  "/api/auth/password", "/api/clients", "/widget", "/rotate-key",
                  "/api/public/widgets/", "/conversations", "/messages"):
        assert route in commands, route
    assert len(ran) >= 30


def mutate_status(readme: str, command_part: str, new_status: str) -> str:
    """The README with the status of the sample answer to the command containing
    `command_part` (its first occurrence in the walkthrough) replaced."""
    step = next(s for s in walkthrough_steps(readme) if command_part in s.command)
    lines = readme.splitlines(keepends=True)
    for index in range(step.line, len(lines)):
        if re.match(r"\s*# ", lines[index]) and STATUS.match(lines[index].strip()[1:].strip()):
            lines[index] = re.sub(r"\d{3}", new_status, lines[index], count=1)
            return "".join(lines)
    raise AssertionError(f"no sample answer after {command_part!r}")


def test_a_sample_answer_edited_to_a_wrong_status_fails_the_walkthrough(fresh_service):
    port, workdir = fresh_service
    edited = mutate_status(README.read_text(), "POST :8000/api/clients ", "200")
    with pytest.raises(WalkthroughError, match=r"api/clients .*answered 201, the README says 200"):
        run_walkthrough(edited, port, workdir)


def test_a_sample_field_the_api_does_not_have_fails_the_walkthrough(fresh_service):
    port, workdir = fresh_service
    edited = README.read_text().replace('"public_api_key": "pk_', '"public_key": "pk_', 1)
    with pytest.raises(WalkthroughError, match="the README shows 'public_key', the answer has no such field"):
        run_walkthrough(edited, port, workdir)


def test_the_walkthrough_needs_httpie_and_curl_installed():
    assert shutil.which("http", path=str(Path(sys.executable).parent)), "pip install -e '.[dev]'"
    assert shutil.which("curl"), "apt-get install curl"
