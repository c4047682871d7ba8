"""/widget.js as the app serves it, and the demo pages of development mode."""

from chatconnect.demo import PASSWORD, USERNAME


def test_the_script_is_served_with_an_etag_and_five_minutes_of_caching(client):
    response = client.get("/widget.js")
    assert response.status_code == 200
    assert response.mimetype == "text/javascript"
    assert response.headers["Cache-Control"] == "public, max-age=300"
    assert b"attachShadow" in response.data
    etag = response.headers["ETag"]
    assert client.get("/widget.js").headers["ETag"] == etag
    revalidated = client.get("/widget.js", headers={"If-None-Match": etag})
    assert revalidated.status_code == 304 and revalidated.data == b""
    assert client.get("/widget.js", headers={"If-None-Match": '"other"'}).status_code == 200
    assert "Set-Cookie" not in response.headers


def test_demo_seed_creates_the_demo_client_once(runner, app, client):
    first = runner.invoke(args=["demo", "seed"])
    assert first.exit_code == 0, first.output
    assert first.output.startswith("created the demo client pk_")
    again = runner.invoke(args=["demo", "seed"])
    assert again.output.startswith("found the demo client")
    assert first.output.split()[4] == again.output.split()[4]  # the same key

    page = client.get("/demo/")
    assert page.status_code == 200 and page.mimetype == "text/html"
    key = first.output.split()[4]
    assert f'data-chatconnect-key="{key}"'.encode() in page.data
    assert client.get("/demo/agent").status_code == 200
    login = client.post("/api/auth/login", json={"username": USERNAME, "password": PASSWORD})
    assert login.status_code == 200
    clients = client.get("/api/clients").get_json()["items"]
    assert [c["public_api_key"] for c in clients] == [key]


def test_demo_pages_before_the_seed_say_how_to_make_it(client):
    page = client.get("/demo/")
    assert page.status_code == 200 and b"demo seed" in page.data


def test_production_serves_no_demo(make_app, app):
    production = make_app(CHATCONNECT_ENV="production")
    response = production.test_client().get("/demo/")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"
    result = production.test_cli_runner().invoke(args=["demo", "seed"])
    assert result.exit_code != 0 and "development mode only" in result.output
