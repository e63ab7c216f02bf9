"""The example project in real browsers: two users chatting, dashboards following edits made in
the admin, in the page and from another process, and pages that reconnect by themselves when
the server restarts.

The example runs in its production shape (channels-server + two runworker on Redis, see
stack.py); alice, bob and admin each have a headless Chromium of their own. Each step leaves a
screenshot in test-output/browser/.
"""

from __future__ import annotations

import uuid

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from tests.browser.browser import Browser
from tests.browser.stack import ExampleStack

pytestmark = pytest.mark.timeout(30)


def chat_lines(browser: Browser) -> list[tuple[str, str]]:
    """(name, text) of every chat message on the page, notices left out."""
    return [(line.find_element(By.CSS_SELECTOR, ".name").text,
             line.find_element(By.CSS_SELECTOR, ".text").text)
            for line in browser.find_all("#log .line.message")]


def notices(browser: Browser) -> list[str]:
    return [line.text for line in browser.find_all("#log .line.notice .text")]


def send_chat(browser: Browser, text: str) -> None:
    browser.find("#chat-input").send_keys(text, Keys.ENTER)


def wait_for_message(browser: Browser, user: str, text: str) -> None:
    browser.wait_for(lambda: (user, text) in chat_lines(browser), f"{user}: {text!r}")


def open_room(browser: Browser, room: str) -> None:
    browser.open(f"/chat/{room}/")
    browser.wait_socket("open")


def item_value(browser: Browser, name: str) -> str | None:
    for row in browser.find_all("#items tr"):
        if row.find_element(By.CSS_SELECTOR, ".name").text == name:
            return row.find_element(By.CSS_SELECTOR, ".value").text
    return None


def wait_for_value(browser: Browser, name: str, value: int) -> None:
    browser.wait_for(lambda: item_value(browser, name) == str(value), f"{name} = {value}")


def open_dashboard(browser: Browser) -> None:
    browser.open("/dashboard/")
    browser.wait_socket("open")


def unique_room() -> str:
    return f"room-{uuid.uuid4().hex[:8]}"


def test_a_chat_message_from_one_user_appears_for_the_other(browsers: dict[str, Browser]):
    alice, bob = browsers["alice"], browsers["bob"]
    room = unique_room()
    open_room(alice, room)
    open_room(bob, room)
    # Both sockets are in the room's group once open: bob's arrival is announced to alice.
    alice.wait_for(lambda: "bob joined" in notices(alice), "bob's join notice")
    # Opening the room created it: it is in the room list of every page.
    assert f"#{room}" in [link.text for link in bob.find_all(".room-nav a")]

    send_chat(alice, "Hi Bob, did the deploy go out?")
    wait_for_message(bob, "alice", "Hi Bob, did the deploy go out?")
    send_chat(bob, "Yes, five minutes ago.")
    for browser in (alice, bob):
        wait_for_message(browser, "bob", "Yes, five minutes ago.")
    assert chat_lines(alice) == chat_lines(bob) == [
        ("alice", "Hi Bob, did the deploy go out?"), ("bob", "Yes, five minutes ago.")]
    alice.screenshot("chat-1-conversation")
    bob.screenshot("chat-1-conversation")


def test_messages_stay_in_their_room(browsers: dict[str, Browser]):
    alice, bob = browsers["alice"], browsers["bob"]
    first, second = unique_room(), unique_room()
    open_room(alice, first)
    open_room(bob, second)
    send_chat(alice, f"only for #{first}")
    # A later message in bob's room: had the first one leaked, bob would have it by then.
    open_room(alice, second)
    send_chat(alice, f"now in #{second}")
    wait_for_message(bob, "alice", f"now in #{second}")
    assert chat_lines(bob) == [("alice", f"now in #{second}")]
    bob.screenshot("chat-2-other-room")


def test_an_admin_edit_appears_on_both_dashboards(browsers: dict[str, Browser]):
    alice, bob, admin = browsers["alice"], browsers["bob"], browsers["admin"]
    open_dashboard(alice)
    open_dashboard(bob)
    new_value = 1000 + uuid.uuid4().int % 9000

    admin.open("/admin/dashboard/item/")
    admin.driver.find_element(By.LINK_TEXT, "visitors").click()
    value_field = admin.wait_for(lambda: admin.find_all("input[name=value]"), "the change form")[0]
    value_field.clear()
    value_field.send_keys(str(new_value))
    admin.screenshot("dashboard-1-admin-form")
    admin.find("input[name=_save]").click()
    admin.wait_for(lambda: "was changed successfully" in admin.page_text(), "the admin's save")

    for browser in (alice, bob):
        wait_for_value(browser, "visitors", new_value)
        browser.wait_for(lambda b=browser: f"visitors → {new_value}" in b.find("#activity").text,
                         "the change in the activity list")
        browser.screenshot("dashboard-1-after-admin-edit")


def test_an_edit_from_the_page_or_another_process_reaches_every_dashboard(
        browsers: dict[str, Browser], example: ExampleStack):
    alice, bob = browsers["alice"], browsers["bob"]
    open_dashboard(alice)
    open_dashboard(bob)

    # The inline form sends an update on the socket's "items" stream (the binding's inbound).
    row = next(row for row in alice.find_all("#items tr")
               if row.find_element(By.CSS_SELECTOR, ".name").text == "open orders")
    row.find_element(By.CSS_SELECTOR, "input[name=value]").send_keys("17", Keys.ENTER)
    for browser in (alice, bob):
        wait_for_value(browser, "open orders", 17)

    # A value the model refuses: only the sender hears why, and nothing changes.
    row.find_element(By.CSS_SELECTOR, "input[name=value]").send_keys("5000000", Keys.ENTER)
    alice.wait_for(lambda: "less than or equal to 1000000" in alice.find("#feedback").text,
                   "the refusal")
    assert item_value(alice, "open orders") == item_value(bob, "open orders") == "17"
    alice.screenshot("dashboard-2-refused-edit")

    # A save in another process (manage.py, plain ORM): the Redis layer carries it.
    example.manage("setitem", "builds queued", "41")
    for browser in (alice, bob):
        wait_for_value(browser, "builds queued", 41)
        browser.screenshot("dashboard-2-after-orm-save")
    # Bob's socket got the later change, and never the refusal meant for alice.
    assert bob.find("#feedback").text == ""


def test_pages_reconnect_after_the_server_restarts(browsers: dict[str, Browser],
                                                   example: ExampleStack):
    alice, bob, admin = browsers["alice"], browsers["bob"], browsers["admin"]
    room = unique_room()
    open_room(alice, room)
    open_room(bob, room)
    open_dashboard(admin)

    example.stop_server()
    for browser in (alice, bob, admin):
        browser.wait_socket("closed")
    alice.screenshot("restart-1-server-down")
    example.start_server()
    for browser in (alice, bob, admin):
        browser.wait_socket("open", timeout=15)  # the bridge's retry delay grows to 4 s

    send_chat(alice, "still here after the restart?")
    wait_for_message(bob, "alice", "still here after the restart?")
    send_chat(bob, "yes, reconnected by itself")
    wait_for_message(alice, "bob", "yes, reconnected by itself")
    example.manage("setitem", "errors today", "3")
    wait_for_value(admin, "errors today", 3)
    for browser in (alice, bob, admin):
        browser.screenshot("restart-2-reconnected")
