"""The widget's style and the client's business hours: owner routes and the public config."""

import pytest

from chatconnect.business_hours import DEFAULT_OFFLINE_MESSAGE

from .conftest import AuthActions

DEFAULT_STYLE = {"theme": "light", "font_family": "system", "border_radius": 12,
                 "offset_x": 20, "offset_y": 20, "launcher_icon": "chat",
                 "show_on_mobile": True, "header_text": ""}
CLOSED = {"mon": [], "tue": [], "wed": [], "thu": [], "fri": [], "sat": [], "sun": []}


@pytest.fixture
def owner(client, auth):
    auth.register()
    return client


@pytest.fixture
def shop(owner):
    response = owner.post("/api/clients", json={"name": "Shop"})
    assert response.status_code == 201
    return response.get_json()


def style_url(shop):
    return f"/api/clients/{shop['id']}/widget/style"


def hours_url(shop):
    return f"/api/clients/{shop['id']}/business-hours"


def public_config(app, shop):
    response = app.test_client().get(f"/api/public/widgets/{shop['public_api_key']}")
    assert response.status_code == 200
    return response


def public_status(app, shop):
    response = app.test_client().get(f"/api/public/widgets/{shop['public_api_key']}/status")
    assert response.status_code == 200
    return response.get_json()


def test_a_new_client_has_the_default_style(owner, shop):
    response = owner.get(style_url(shop))
    assert response.status_code == 200
    style = response.get_json()
    assert {k: v for k, v in style.items() if k != "updated_at"} == DEFAULT_STYLE
    assert style["updated_at"].endswith("Z")


def test_patch_changes_only_what_is_given_and_moves_updated_at_only_on_a_change(owner, shop):
    before = owner.get(style_url(shop)).get_json()
    response = owner.patch(style_url(shop), json={"theme": "dark", "border_radius": 0,
                                                  "show_on_mobile": False,
                                                  "header_text": "We answer fast"})
    assert response.status_code == 200
    changed = response.get_json()
    assert changed == {**DEFAULT_STYLE, "theme": "dark", "border_radius": 0,
                       "show_on_mobile": False, "header_text": "We answer fast",
                       "updated_at": changed["updated_at"]}
    assert changed["updated_at"] > before["updated_at"]
    again = owner.patch(style_url(shop), json={"theme": "dark"}).get_json()
    assert again == changed
    assert owner.patch(style_url(shop), json={}).get_json() == changed
    assert owner.patch(style_url(shop), json={"header_text": ""}).get_json()["header_text"] == ""


@pytest.mark.parametrize("field, value", [
    ("theme", "blue"), ("theme", None), ("font_family", "Comic Sans"), ("border_radius", 25),
    ("border_radius", -1), ("border_radius", 12.5), ("border_radius", True),
    ("border_radius", "12"), ("offset_x", 201), ("offset_y", -5), ("launcher_icon", "bell"),
    ("show_on_mobile", "yes"), ("show_on_mobile", 1), ("header_text", "x" * 101),
    ("header_text", None), ("header_text", "nul\x00"), ("colour", "red"),
])
def test_bad_style_values_are_refused_and_change_nothing(owner, shop, field, value):
    before = owner.get(style_url(shop)).get_json()
    response = owner.patch(style_url(shop), json={"theme": "dark", field: value})
    assert response.status_code == 422
    assert field in response.get_json()["error"]["fields"]
    assert owner.get(style_url(shop)).get_json() == before


def test_another_owners_client_is_not_found(app, owner, shop):
    other = app.test_client()
    AuthActions(other).register()
    for url in (style_url(shop), hours_url(shop)):
        assert other.get(url).status_code == 404
    assert other.patch(style_url(shop), json={"theme": "dark"}).status_code == 404
    assert other.put(hours_url(shop), json={"timezone": "UTC"}).status_code == 404
    assert owner.get(hours_url(shop)).get_json()["timezone"] is None
    assert app.test_client().get(style_url(shop)).status_code == 401


def test_style_is_in_the_public_config_and_changes_its_etag(app, owner, shop):
    before = public_config(app, shop)
    assert before.get_json()["style"] == DEFAULT_STYLE
    owner.patch(style_url(shop), json={"launcher_icon": "help", "offset_x": 40})
    after = public_config(app, shop)
    assert after.get_json()["style"] == {**DEFAULT_STYLE, "launcher_icon": "help", "offset_x": 40}
    assert after.headers["ETag"] != before.headers["ETag"]
    revalidated = app.test_client().get(f"/api/public/widgets/{shop['public_api_key']}",
                                        headers={"If-None-Match": before.headers["ETag"]})
    assert revalidated.status_code == 200


def test_deleting_the_client_deletes_its_style_and_hours(owner, shop, database_url):
    import psycopg
    owner.put(hours_url(shop), json={"timezone": "UTC"})
    assert owner.delete(f"/api/clients/{shop['id']}").status_code == 204
    with psycopg.connect(database_url) as conn:
        for table in ("widget_styles", "business_hours"):
            assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,)


def test_business_hours_default_to_always_open(owner, shop):
    assert owner.get(hours_url(shop)).get_json() == {
        "timezone": None, "schedule": CLOSED, "offline_message": DEFAULT_OFFLINE_MESSAGE}


def test_put_replaces_the_business_hours(app, owner, shop):
    hours = {"timezone": "Europe/Berlin",
             "schedule": {"mon": [["13:00", "17:00"], ["09:00", "12:00"]], "sat": []},
             "offline_message": "Back on Monday!"}
    response = owner.put(hours_url(shop), json=hours)
    assert response.status_code == 200
    expected = {**hours, "schedule": {**CLOSED, "mon": [["09:00", "12:00"], ["13:00", "17:00"]]}}
    assert response.get_json() == expected
    assert owner.get(hours_url(shop)).get_json() == expected
    # Fields left out take their defaults.
    assert owner.put(hours_url(shop), json={"timezone": "Asia/Tokyo"}).get_json() == {
        "timezone": "Asia/Tokyo", "schedule": CLOSED, "offline_message": DEFAULT_OFFLINE_MESSAGE}


def test_closed_all_week_in_the_status_and_the_offline_message_in_the_config(app, owner, shop):
    assert public_status(app, shop)["open_now"] is True
    open_config = public_config(app, shop)
    owner.put(hours_url(shop), json={"timezone": "UTC", "offline_message": "Closed for now."})
    status = public_status(app, shop)
    assert (status["open_now"], status["next_open_at"]) == (False, None)
    config = public_config(app, shop)
    assert config.get_json()["offline_message"] == "Closed for now."
    assert config.headers["ETag"] != open_config.headers["ETag"]


def test_open_all_week_says_so(app, owner, shop):
    all_day = {day: [["00:00", "24:00"]] for day in CLOSED}
    owner.put(hours_url(shop), json={"timezone": "Pacific/Auckland", "schedule": all_day})
    assert public_status(app, shop)["open_now"] is True


def test_next_open_at_is_served_in_utc(app, owner, shop):
    # Open one minute a week, on the minute that comes next: always in the future, a week at most.
    owner.put(hours_url(shop), json={"timezone": "UTC", "schedule": {"mon": [["03:00", "03:01"]]}})
    status = public_status(app, shop)
    if status["open_now"]:  # the test ran during that very minute
        assert status["next_open_at"] is None
    else:
        assert status["next_open_at"].endswith("T03:00:00Z")


@pytest.mark.parametrize("body, field", [
    ({"timezone": "Mars/Olympus"}, "timezone"),
    ({"timezone": 1}, "timezone"),
    ({"schedule": {"mon": [["09:00", "08:00"]]}}, "schedule"),
    ({"schedule": {"funday": []}}, "schedule"),
    ({"schedule": None}, "schedule"),
    ({"offline_message": ""}, "offline_message"),
    ({"offline_message": "x" * 501}, "offline_message"),
    ({"open": True}, "open"),
])
def test_bad_business_hours_are_refused_and_change_nothing(owner, shop, body, field):
    owner.put(hours_url(shop), json={"timezone": "UTC", "offline_message": "Kept"})
    response = owner.put(hours_url(shop), json={"timezone": "Europe/Paris", **body})
    assert response.status_code == 422
    assert field in response.get_json()["error"]["fields"]
    kept = owner.get(hours_url(shop)).get_json()
    assert (kept["timezone"], kept["offline_message"]) == ("UTC", "Kept")
