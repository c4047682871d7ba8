"""The widget and the dashboard in a real browser, where CORS, Shadow DOM and storage are real.

The customer page is served from http://localhost:<port>, the API from
http://127.0.0.1:<another port>: two origins, so every call of the widget is cross-origin."""

import json
import os
import re
import subprocess
import sys

import pytest

from chatconnect.business_hours import DAYS

from ..conftest import PASSWORD

CUSTOMER_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<link rel="icon" href="data:,"><title>Shop</title>{head}</head>
<body><h1>Shop</h1><p>Products.</p>
<script src="{api}/widget.js" data-chatconnect-key="{key}" async></script></body></html>"""


@pytest.fixture
def owner(client, auth):
    auth.register()
    return client


def new_client(owner, **body):
    response = owner.post("/api/clients", json={"name": "Shop", **body})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def open_customer_page(context, pages, api, key, head="", until_warning=False):
    """The customer page with the widget; the console messages and page errors it produced.

    With `until_warning`, returns once the page has logged a console warning."""
    page = context.new_page()
    seen = {"console": [], "errors": []}
    page.on("console", lambda message: seen["console"].append((message.type, message.text)))
    page.on("pageerror", lambda error: seen["errors"].append(str(error)))
    url = pages.add(CUSTOMER_PAGE.format(head=head, api=api.url(), key=key))
    if until_warning:
        with page.expect_console_message(lambda message: message.type == "warning"):
            page.goto(url)
    else:
        page.goto(url)
    return page, seen


def launcher(page):
    return page.locator("[data-chatconnect] >> button.launcher")


def style_of(locator, prop):
    return locator.evaluate(f"node => getComputedStyle(node).getPropertyValue({json.dumps(prop)})")


def send(page, text):
    page.get_by_label("Message", exact=True).fill(text)
    page.get_by_label("Message", exact=True).press("Enter")


def log_texts(page):
    return page.locator("[data-chatconnect] >> ol.log > li > .body").all_inner_texts()


def test_the_widget_appears_with_the_configured_colour_position_name_and_style(
        owner, context, pages, api):
    shop = new_client(owner)
    owner.patch(f"/api/clients/{shop['id']}/widget", json={
        "primary_color": "#0f766e", "position": "bottom-left", "widget_name": "Acme help",
        "welcome_message": "Ask us anything."})
    owner.patch(f"/api/clients/{shop['id']}/widget/style", json={
        "theme": "dark", "font_family": "serif", "border_radius": 4, "offset_x": 40,
        "offset_y": 30, "launcher_icon": "none", "header_text": "Replies within minutes"})
    page, seen = open_customer_page(context, pages, api, shop["public_api_key"])

    button = launcher(page)
    button.wait_for()
    assert page.evaluate("document.querySelector('[data-chatconnect]').shadowRoot !== null")
    assert style_of(button, "background-color") == "rgb(15, 118, 110)"
    assert style_of(button, "border-top-left-radius") == "4px"
    assert button.inner_text() == "Acme help"  # launcher_icon none: the name
    box = button.bounding_box()
    assert box["x"] == 40
    assert box["y"] + box["height"] == 720 - 30

    button.click()
    panel = page.get_by_role("dialog", name="Acme help")
    assert panel.is_visible()
    assert panel.get_by_text("Replies within minutes").is_visible()
    assert panel.get_by_text("Ask us anything.").is_visible()
    assert style_of(panel, "background-color") == "rgb(31, 41, 55)"  # dark theme
    assert "Georgia" in style_of(panel, "font-family")
    # Focus goes to the message box; Escape closes the panel and gives it back to the launcher.
    assert page.evaluate("document.querySelector('[data-chatconnect]').shadowRoot"
                         ".activeElement.tagName") == "TEXTAREA"
    page.keyboard.press("Escape")
    assert not panel.is_visible()
    assert button.get_attribute("aria-expanded") == "false"
    assert page.evaluate("document.querySelector('[data-chatconnect]').shadowRoot"
                         ".activeElement.classList.contains('launcher')")
    assert seen["errors"] == []


def test_the_widget_works_from_the_keyboard_alone_and_respects_reduced_motion(
        owner, context, pages, api):
    shop = new_client(owner)
    page, seen = open_customer_page(context, pages, api, shop["public_api_key"])
    launcher(page).wait_for()
    page.emulate_media(reduced_motion="reduce")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.hasAttribute('data-chatconnect')")
    page.keyboard.press("Enter")
    panel = page.get_by_role("dialog")
    assert panel.is_visible()
    assert style_of(panel, "animation-name") == "none"
    page.keyboard.type("Typed, not clicked")
    page.keyboard.press("Enter")
    page.locator("[data-chatconnect] >> li.visitor:not(.pending)", has_text="Typed, not clicked").wait_for()
    page.keyboard.press("Escape")
    assert not panel.is_visible()
    page.emulate_media(reduced_motion="no-preference")
    page.keyboard.press("Enter")  # the focus is back on the launcher
    assert panel.is_visible()
    assert style_of(panel, "animation-name") == "cc-in"
    assert seen["errors"] == []


def test_a_visitor_chats_with_the_team_live_and_a_reload_keeps_the_conversation(
        owner, context, pages, api):
    shop = new_client(owner)
    page, seen = open_customer_page(context, pages, api, shop["public_api_key"])
    launcher(page).click()
    send(page, "Where is my order?")
    page.locator("[data-chatconnect] >> li.visitor:not(.pending)", has_text="Where is my order?").wait_for()

    conversations = owner.get(f"/api/clients/{shop['id']}/conversations").get_json()["items"]
    assert len(conversations) == 1
    conversation_url = f"/api/clients/{shop['id']}/conversations/{conversations[0]['id']}"
    reply = owner.post(f"{conversation_url}/messages", json={"body": "It ships tomorrow."})
    assert reply.status_code == 201
    # No reload: the widget is waiting on the conversation and shows the reply.
    page.locator("[data-chatconnect] >> li.agent", has_text="It ships tomorrow.").wait_for()

    # A reply while the panel is closed: the launcher says so.
    page.keyboard.press("Escape")
    owner.post(f"{conversation_url}/messages", json={"body": "Anything else?"})
    page.locator("[data-chatconnect] >> button.launcher[aria-label$='(1 new message)']").wait_for()
    assert page.locator("[data-chatconnect] >> .badge").inner_text() == "1"
    launcher(page).click()
    assert not page.locator("[data-chatconnect] >> .badge").is_visible()

    page.reload()
    page.locator("[data-chatconnect] >> li.agent", has_text="Anything else?").wait_for(state="attached")
    assert not page.locator("[data-chatconnect] >> .badge").is_visible()  # history is not news
    launcher(page).click()
    assert log_texts(page)[1:] == ["Where is my order?", "It ships tomorrow.", "Anything else?"]
    send(page, "Thanks!")
    page.locator("[data-chatconnect] >> li.visitor:not(.pending)", has_text="Thanks!").wait_for()
    messages = owner.get(conversation_url).get_json()["messages"]
    assert [m["body"] for m in messages] == ["Where is my order?", "It ships tomorrow.",
                                             "Anything else?", "Thanks!"]
    assert len(owner.get(f"/api/clients/{shop['id']}/conversations").get_json()["items"]) == 1

    # A second tab of the same site continues it too.
    second, _ = open_customer_page(context, pages, api, shop["public_api_key"])
    launcher(second).click()
    second.locator("[data-chatconnect] >> li.visitor", has_text="Thanks!").wait_for()
    assert seen["errors"] == []


def test_typing_and_seen_go_both_ways(owner, context, pages, api):
    shop = new_client(owner)
    page, seen = open_customer_page(context, pages, api, shop["public_api_key"])
    launcher(page).click()
    send(page, "Is anyone there?")
    visitor_message = page.locator("[data-chatconnect] >> li.visitor:not(.pending)", has_text="Is anyone")
    visitor_message.wait_for()
    conversation = owner.get(f"/api/clients/{shop['id']}/conversations").get_json()["items"][0]
    url = f"/api/clients/{shop['id']}/conversations/{conversation['id']}"
    first_id = owner.get(url).get_json()["messages"][0]["id"]

    # The team types: the widget says so, live; the reply replaces the indicator.
    typing = page.locator("[data-chatconnect] >> .typing")
    for _ in range(50):  # the widget's stream may still be connecting: typing is not replayed
        assert owner.post(f"{url}/typing").status_code == 204
        try:
            typing.wait_for(state="visible", timeout=400)
            break
        except Exception:
            continue
    assert typing.inner_text().endswith("is typing…")
    owner.post(f"{url}/seen", json={"message_id": first_id})
    page.locator("[data-chatconnect] >> li.seen").wait_for()
    assert page.locator("[data-chatconnect] >> li.seen").inner_text() == "Seen"
    reply = owner.post(f"{url}/messages", json={"body": "Yes, here!"}).get_json()
    page.locator("[data-chatconnect] >> li.agent", has_text="Yes, here!").wait_for()
    assert not typing.is_visible()

    # The visitor saw the reply (the panel is open), and types back.
    for _ in range(50):
        if owner.get(url).get_json()["visitor_last_seen_message_id"] == reply["id"]:
            break
        page.wait_for_timeout(100)
    assert owner.get(url).get_json()["visitor_last_seen_message_id"] == reply["id"]
    with page.expect_request(lambda request: request.url.endswith("/typing")
                             and request.method == "POST"):
        page.get_by_label("Message", exact=True).press_sequentially("Gre")
    assert seen["errors"] == []


@pytest.mark.parametrize("case", ["refused origin", "suspended client", "unknown key"])
def test_refusals_render_nothing_with_one_warning_and_no_error(owner, context, pages, api, case):
    shop = new_client(owner, allowed_domains=["shop.example"] if case == "refused origin" else [])
    key = shop["public_api_key"]
    if case == "suspended client":
        owner.patch(f"/api/clients/{shop['id']}", json={"status": "suspended"})
    if case == "unknown key":
        key = "pk_" + "x" * 32
    page, seen = open_customer_page(context, pages, api, key, until_warning=True)
    page.wait_for_load_state("networkidle")
    assert page.locator("[data-chatconnect]").count() == 0
    warnings = [text for kind, text in seen["console"] if kind == "warning"]
    assert len(warnings) == 1 and warnings[0].startswith("ChatConnect: the widget is not shown")
    assert seen["errors"] == []


def test_outside_business_hours_the_offline_message_shows_and_messages_are_accepted(
        owner, context, pages, api):
    shop = new_client(owner)
    owner.put(f"/api/clients/{shop['id']}/business-hours", json={
        "timezone": "Europe/Berlin", "schedule": {day: [] for day in DAYS},
        "offline_message": "We are closed, leave us a note."})
    page, seen = open_customer_page(context, pages, api, shop["public_api_key"])
    launcher(page).click()
    notice = page.get_by_role("status").filter(has_text="We are closed, leave us a note.")
    notice.wait_for()
    send(page, "Call me back tomorrow")
    page.locator("[data-chatconnect] >> li.visitor:not(.pending)", has_text="Call me back").wait_for()
    assert len(owner.get(f"/api/clients/{shop['id']}/conversations").get_json()["items"]) == 1


def test_during_business_hours_no_offline_message_and_the_team_online(owner, context, pages, api):
    shop = new_client(owner)
    owner.put(f"/api/clients/{shop['id']}/business-hours", json={
        "timezone": "UTC", "schedule": {day: [["00:00", "24:00"]] for day in DAYS}})
    owner.get(f"/api/events?client_id={shop['id']}")  # the team is there
    page = context.new_page()
    with page.expect_response(lambda response: response.url.endswith("/status")):
        page.goto(pages.add(CUSTOMER_PAGE.format(head="", api=api.url(), key=shop["public_api_key"])))
    launcher(page).click()
    assert page.get_by_role("dialog").is_visible()
    assert page.get_by_text("Online", exact=True).is_visible()
    assert not page.locator("[data-chatconnect] >> .offline").is_visible()


def test_a_visitor_over_the_rate_limit_is_told_to_wait_and_keeps_the_text(
        owner, context, pages, make_api):
    api = make_api(CONVERSATION_LIMIT_PER_IP="1/3600")
    shop = new_client(owner)
    first, _ = open_customer_page(context, pages, api, shop["public_api_key"])
    launcher(first).click()
    send(first, "First visitor")
    first.locator("[data-chatconnect] >> li.visitor:not(.pending)", has_text="First visitor").wait_for()

    # Another visitor from the same address: a new browser profile, so no stored conversation.
    other_context = context.browser.new_context()
    try:
        second, seen = open_customer_page(other_context, pages, api, shop["public_api_key"])
        launcher(second).click()
        send(second, "Second visitor")
        alert = second.get_by_role("alert")
        alert.filter(has_text="Please wait").wait_for()
        # Retry-After (an hour) is readable: the server exposes it to the page.
        assert re.search(r"wait 60 minutes", alert.inner_text())
        assert second.get_by_label("Message", exact=True).input_value() == "Second visitor"
        assert seen["errors"] == []
    finally:
        other_context.close()
    assert len(owner.get(f"/api/clients/{shop['id']}/conversations").get_json()["items"]) == 1


def test_articles_are_suggested_while_the_first_message_is_written(owner, context, pages, api):
    """The knowledge base's public routes answer as the API document says (Chromium is given
    their answers, on the API's origin); the widget's part is what is tested here."""
    shop = new_client(owner)
    queries = []

    def articles(route):
        queries.append(route.request.url)
        cors = {"Access-Control-Allow-Origin": f"http://localhost:{pages.port}"}
        if "/articles/" in route.request.url:
            route.fulfill(json={"slug": "returns", "title": "Returning an order", "locale": "en",
                                "updated_at": "2026-11-30T10:00:00Z",
                                "body_html": '<p>Send it back within <b>30 days</b>.</p>'
                                             '<img src="x" onerror="window.hacked = true">'},
                          headers=cors)
        else:
            route.fulfill(json={"items": [{"slug": "returns", "title": "Returning an order",
                                           "snippet": "How to <mark>return</mark> &lt;items&gt;"}],
                                "next_cursor": None}, headers=cors)

    context.route(lambda url: "/articles" in url, articles)
    page, seen = open_customer_page(context, pages, api, shop["public_api_key"])
    launcher(page).click()
    page.get_by_label("Message", exact=True).press_sequentially("How do I return")
    region = page.get_by_role("region", name="Suggested articles")
    region.get_by_text("Returning an order").wait_for()
    assert region.locator("mark").inner_text() == "return"
    assert "<items>" in region.inner_text()  # the snippet's escaped text stays text
    assert len(queries) <= 3  # debounced, not one request per key
    region.get_by_role("button").click()
    page.get_by_text("Send it back within").wait_for()
    assert page.evaluate("window.hacked") is None
    page.get_by_role("button", name="← Back to the chat").click()
    send(page, "How do I return my order?")
    page.locator("[data-chatconnect] >> li.visitor:not(.pending)", has_text="my order").wait_for()
    assert not region.is_visible()
    assert seen["errors"] == []


def test_without_articles_nothing_is_suggested(owner, context, pages, api):
    """A server without a knowledge base (or a client without articles)."""
    shop = new_client(owner)
    page, seen = open_customer_page(context, pages, api, shop["public_api_key"])
    launcher(page).click()
    with page.expect_request(lambda request: "/articles" in request.url):
        page.get_by_label("Message", exact=True).press_sequentially("Where is")
    send(page, "Where is my parcel?")
    page.locator("[data-chatconnect] >> li.visitor:not(.pending)", has_text="my parcel").wait_for()
    assert not page.get_by_role("region", name="Suggested articles").is_visible()
    assert seen["errors"] == []


HOSTILE_CSS = """<style>
* { all: unset; }
html { font-size: 64px; }
body { font-size: 90px; line-height: 3; }
button, textarea, ol, li, div { font-size: 90px !important; padding: 40px; width: 2000px; }
</style>"""


def test_the_pages_own_css_does_not_break_the_widget(owner, context, pages, api):
    shop = new_client(owner)
    page, seen = open_customer_page(context, pages, api, shop["public_api_key"], head=HOSTILE_CSS)
    button = launcher(page)
    button.wait_for()
    box = button.bounding_box()
    assert (box["width"], box["height"]) == (56, 56)
    assert (box["x"] + box["width"], box["y"] + box["height"]) == (1000 - 20, 720 - 20)
    button.click()
    panel = page.get_by_role("dialog")
    assert panel.bounding_box()["width"] == 360
    welcome = page.locator("[data-chatconnect] >> li.agent").first
    assert style_of(welcome, "font-size") == "14px"
    send(page, "Still readable?")
    page.locator("[data-chatconnect] >> li.visitor:not(.pending)", has_text="Still readable?").wait_for()
    # And the widget's CSS does not leak out: the page's paragraphs keep the page's styles.
    assert style_of(page.locator("p").first, "font-size") == "90px"
    assert seen["errors"] == []


DASHBOARD_PAGE = """<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,">
<title>Dashboard</title><body><script>
window.run = async function (api, username, password) {
  const login = await fetch(api + "/api/auth/login", {method: "POST", credentials: "include",
    headers: {"Content-Type": "application/json"}, body: JSON.stringify({username, password})});
  if (!login.ok) return {login: login.status};
  const clients = await fetch(api + "/api/clients", {credentials: "include"});
  return {login: login.status, status: clients.status, body: await clients.json()};
};
window.readClients = async function (api) {
  try {
    const response = await fetch(api + "/api/clients", {credentials: "include"});
    return {read: true, status: response.status};
  } catch (error) {
    return {read: false, error: error.name};
  }
};
window.createClient = async function (api) {
  try {
    const response = await fetch(api + "/api/clients", {method: "POST", credentials: "include",
      headers: {"Content-Type": "application/json"}, body: JSON.stringify({name: "Planted"})});
    return {read: true, status: response.status};
  } catch (error) {
    return {read: false, error: error.name};
  }
};
</script></body>"""


def test_a_dashboard_on_an_allowed_origin_signs_in_with_credentials_and_lists_clients(
        owner, auth, context, pages, api):
    user = owner.get("/api/auth/me").get_json()["user"]
    new_client(owner)
    page = context.new_page()
    page.goto(pages.add(DASHBOARD_PAGE, host="app.example.test"))
    result = page.evaluate("([api, u, p]) => run(api, u, p)",
                           [api.url("api.example.test"), user["username"], PASSWORD])
    assert result["login"] == 200 and result["status"] == 200
    assert [c["name"] for c in result["body"]["items"]] == ["Shop"]
    # Writes work too: the preflight names POST, the cookie travels, the CSRF check passes.
    assert page.evaluate("api => createClient(api)", api.url("api.example.test")) \
        == {"read": True, "status": 201}


@pytest.mark.parametrize("host", ["evil.example.test", "localhost"])
def test_a_page_on_another_origin_cannot_read_the_answer(owner, context, pages, api, host):
    user = owner.get("/api/auth/me").get_json()["user"]
    dashboard = context.new_page()
    dashboard.goto(pages.add(DASHBOARD_PAGE, host="app.example.test"))
    assert dashboard.evaluate("([api, u, p]) => run(api, u, p)", [
        api.url("api.example.test"), user["username"], PASSWORD])["status"] == 200

    # Another page in the same browser, which holds the dashboard's session cookie.
    other = context.new_page()
    other.goto(pages.add(DASHBOARD_PAGE, host=host))
    assert other.evaluate("api => readClients(api)", api.url("api.example.test")) \
        == {"read": False, "error": "TypeError"}
    assert other.evaluate("api => createClient(api)", api.url("api.example.test")) \
        == {"read": False, "error": "TypeError"}
    names = [c["name"] for c in owner.get("/api/clients").get_json()["items"]]
    assert "Planted" not in names


def test_the_demo_page_of_development_mode_chats_with_its_agent_page(context, api, database_url):
    seeded = subprocess.run([sys.executable, "-m", "flask", "--app", "chatconnect", "demo", "seed"],
                            env={**os.environ, "DATABASE_URL": database_url,
                                 "CHATCONNECT_ENV": "development"},
                            capture_output=True, text=True, timeout=60)
    assert seeded.returncode == 0, seeded.stderr
    shop = context.new_page()
    errors = []
    shop.on("pageerror", lambda error: errors.append(str(error)))
    shop.goto(f"{api.url()}/demo/")
    launcher(shop).click()
    send(shop, "Is the teapot dishwasher safe?")
    agent = context.new_page()
    agent.on("pageerror", lambda error: errors.append(str(error)))
    agent.goto(f"{api.url()}/demo/agent")
    agent.get_by_text("Is the teapot dishwasher safe?").first.wait_for()
    assert errors == []
