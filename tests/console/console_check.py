#!/usr/bin/python3
"""Drives the web console in a real headless Chromium (Debian's chromium and
chromium-driver, through python3-selenium) against a running deltatapd, and
checks what a person relies on. tests/console_test.cc starts the daemon and a
simulator and runs this script; it can also be run by hand against any daemon:

    tests/console/console_check.py --url http://127.0.0.1:9477 \
        --screenshots /tmp/shots [--token T] [--hostile-id ID]

Checks, each printed as "ok: ..." or "FAIL: ...":
  - with --token, the page asks for the token once (a dialog, on the first 401),
    refuses a wrong one with a second prompt, and keeps the right one for the
    tab: every page after it loads without asking again;
  - every page (overview, sessions, a timeline, analytics) loads with no error
    in the browser's console (a 401 while the token is being asked for is the
    only one expected);
  - the sessions page searches, filters live/ended and sorts;
  - a session's timeline shows "planStatus: pending → in_progress" for a session
    whose history has that change (found through the API), and marks its gaps
    and inferred steps as the API reports them;
  - the session named by --hostile-id (text with <script> in it) is shown as
    that text, in the list and its timeline, and no script of it runs;
  - the weekly heatmap's 168 cells add up to /api/analytics/heatmap's total, and
    the calendar's cells to the sum of its days;
  - light, dark (prefers-color-scheme) and a 375 px wide phone screen; no page
    is wider than the phone;
  - the first page load (the page and every file it pulls in: its modules,
    style and Chart.js, as the browser's Performance API lists them) is at most
    300 KB.
Screenshots go to --screenshots as console-<page>.png (full page).
Exit status: 0 when every check passed, 1 otherwise, 2 when the browser could
not be started.
"""

import argparse
import base64
import json
import sys
import time
import urllib.parse
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

FIRST_LOAD_LIMIT = 300 * 1024
PHONE_WIDTH = 375

failures = []


def check(condition, what, detail=""):
    if condition:
        print("ok: " + what, flush=True)
    else:
        failures.append(what)
        print("FAIL: " + what + (": " + detail if detail else ""), flush=True)
    return condition


def parse_args():
    p = argparse.ArgumentParser(description="checks the web console in headless Chromium")
    p.add_argument("--url", required=True, help="the daemon's HTTP API, e.g. http://127.0.0.1:9477")
    p.add_argument("--screenshots", required=True, help="directory for console-*.png")
    p.add_argument("--token", default="", help="[http] token: the page must ask for it")
    p.add_argument("--hostile-id", default="", help="a stored session id holding <script>")
    p.add_argument("--chromium", default="/usr/bin/chromium")
    p.add_argument("--chromedriver", default="/usr/bin/chromedriver")
    p.add_argument("--timeout", type=float, default=20.0, help="seconds to wait for a page")
    return p.parse_args()


class Api:
    """The JSON API as the test sees it, beside the browser."""

    def __init__(self, base, token):
        self.base, self.token = base, token

    def get(self, path):
        request = urllib.request.Request(self.base + path)
        if self.token:
            request.add_header("Authorization", "Bearer " + self.token)
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.read()

    def json(self, path):
        return json.loads(self.get(path))

    def history(self, session_id):
        deltas, cursor = [], None
        while True:
            path = "/api/deltas/" + urllib.parse.quote(session_id, safe="") + "?limit=1000"
            if cursor:
                path += "&before=" + urllib.parse.quote(cursor, safe="")
            page = self.json(path)
            deltas += page["deltas"]
            cursor = page["next"]
            if not cursor:
                return sorted(deltas, key=lambda d: d["id"])


def start_browser(args):
    options = webdriver.ChromeOptions()
    options.binary_location = args.chromium
    # --no-sandbox: Chromium's sandbox cannot start as root (CI containers).
    for flag in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1280,900", "--lang=en-US", "--no-first-run",
                 "--disable-extensions", "--disable-background-networking"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(args.chromedriver), options=options)


class Console:
    def __init__(self, driver, args):
        self.driver, self.args = driver, args
        self.base = args.url.rstrip("/") + "/ui/"

    def wait(self, script, what):
        """Waits until the JavaScript expression `script` is truthy; returns its value."""
        try:
            return WebDriverWait(self.driver, self.args.timeout, poll_frequency=0.1).until(
                lambda d: d.execute_script("return " + script))
        except TimeoutException:
            main = self.driver.execute_script(
                "const m = document.getElementById('main'); return m ? m.textContent : ''")
            check(False, what, "timed out; the page says: " + (main or "")[:500])
            return None

    def open(self, fragment, ready, what):
        self.driver.get(self.base + fragment)
        return self.wait(ready, what)

    def go(self, fragment, ready, what):
        """Changes the hash within the loaded page, as a click on a link does."""
        self.driver.execute_script("location.hash = arguments[0]", fragment)
        return self.wait(ready, what)

    def errors(self, allowed=()):
        """The browser console's errors since the last call, minus the `allowed` substrings."""
        found = []
        for entry in self.driver.get_log("browser"):
            if entry["level"] not in ("SEVERE", "ERROR"):
                continue
            if any(a in entry["message"] for a in allowed):
                continue
            found.append(entry["message"])
        return found

    def no_errors(self, page, allowed=()):
        errors = self.errors(allowed)
        check(not errors, page + " loads with no error in the browser console", "; ".join(errors)[:1500])

    def screenshot(self, name, max_height=3000):
        """A full-page PNG (up to `max_height` CSS pixels tall), through the DevTools protocol."""
        metrics = self.driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        viewport = metrics.get("cssLayoutViewport") or metrics["layoutViewport"]
        width = max(int(viewport["clientWidth"]), 1)
        height = min(max(int(size["height"]), int(viewport["clientHeight"])), max_height)
        shot = self.driver.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}})
        path = self.args.screenshots.rstrip("/") + "/console-" + name + ".png"
        with open(path, "wb") as f:
            f.write(base64.b64decode(shot["data"]))
        print("screenshot: " + path, flush=True)


def text_of(driver, selector):
    return driver.execute_script(
        "const e = document.querySelector(arguments[0]); return e ? e.textContent : null", selector)


def find_pending_to_in_progress(api):
    """A session whose history holds planStatus pending → in_progress."""
    cursor = None
    for _ in range(50):
        path = "/api/deltas?type=updated&limit=1000" + (
            "&before=" + urllib.parse.quote(cursor, safe="") if cursor else "")
        page = api.json(path)
        for d in page["deltas"]:
            before, after = d.get("before") or {}, d.get("after") or {}
            if before.get("planStatus") == "pending" and after.get("planStatus") == "in_progress":
                return d["sessionId"]
        cursor = page["next"]
        if not cursor:
            break
    return None


def check_token_prompt(console, driver, token):
    """A fresh tab: the overview's first request answers 401, the page asks."""
    if not console.wait("document.getElementById('token-dialog').open", "the page asks for the token"):
        return
    check(True, "the page asks for the token on the first 401")
    console.screenshot("token")
    box = driver.find_element(By.ID, "token-input")
    box.send_keys("not-the-token")
    driver.find_element(By.ID, "token-submit").click()
    asked_again = console.wait(
        "document.getElementById('token-dialog').open && "
        "document.getElementById('token-reason').textContent.includes('refused')",
        "a wrong token is refused and asked for again")
    if asked_again:
        check(True, "a wrong token is refused and asked for again")
    box = driver.find_element(By.ID, "token-input")
    box.send_keys(token)
    driver.find_element(By.ID, "token-submit").click()
    if console.wait("document.getElementById('page-overview')", "the overview loads with the token"):
        check(True, "the overview loads with the right token")
    kept = driver.execute_script("return sessionStorage.getItem('deltatap.token')")
    check(kept == token, "the token is kept in sessionStorage for the tab")
    console.no_errors("the token prompt", allowed=("401",))
    # A reload in the same tab does not ask again.
    driver.get(console.base + "#/sessions")
    console.wait("document.querySelector('#sessions-table tbody tr')", "sessions after a reload")
    check(not driver.execute_script("return document.getElementById('token-dialog').open"),
          "a reload in the same tab does not ask for the token again")


def check_overview(console, driver, api, hostile_id, dark=False):
    if not console.open("#/", "document.getElementById('count-deltas')", "the overview loads"):
        return
    stats = api.json("/api/stats")
    shown = text_of(driver, "#count-sessions .value")
    check(shown is not None and shown.replace(",", "").isdigit(), "the overview shows the session count",
          str(shown))
    connection = driver.execute_script(
        "return document.querySelector('[data-connected]').getAttribute('data-connected')")
    check(connection == str(stats["connected"]).lower(), "the overview shows the connection state",
          "%s vs %s" % (connection, stats["connected"]))
    if hostile_id:
        gaps = driver.execute_script(
            "return [...document.querySelectorAll('#recent-gaps a.sid')].map(a => a.textContent)")
        check(hostile_id in gaps, "the overview lists the hostile session's gap, its id as text",
              repr(gaps)[:300])
        check_no_injection(driver, "the overview")
    console.no_errors("the overview" + (" (dark)" if dark else ""))


def check_sessions(console, driver, api, hostile_id):
    if not console.go("#/sessions", "document.querySelector('#sessions-table tbody tr')",
                      "the sessions page loads"):
        return
    sessions = api.json("/api/sessions")["sessions"]
    rows = driver.execute_script("return document.querySelectorAll('#sessions-table tbody tr').length")
    check(rows == min(len(sessions), 200), "the sessions page lists the ledger's sessions",
          "%d rows for %d sessions" % (rows, len(sessions)))
    live = sum(1 for s in sessions if s["live"])
    filter_box = driver.find_element(By.ID, "session-filter")
    for value, expected in (("live", live), ("ended", len(sessions) - live)):
        driver.execute_script("arguments[0].value = arguments[1];"
                              "arguments[0].dispatchEvent(new Event('change'))", filter_box, value)
        shown = driver.execute_script("return document.querySelectorAll('#sessions-table tbody tr').length")
        check(shown == min(expected, 200), "the %s filter shows the %s sessions" % (value, value),
              "%d shown, %d expected" % (shown, expected))
    driver.execute_script("arguments[0].value = 'all'; arguments[0].dispatchEvent(new Event('change'))",
                          filter_box)
    sort_box = driver.find_element(By.ID, "session-sort")
    driver.execute_script("arguments[0].value = 'id'; arguments[0].dispatchEvent(new Event('change'))",
                          sort_box)
    ids = driver.execute_script(
        "return [...document.querySelectorAll('#sessions-table tbody tr')].map(r => r.dataset.session)")
    check(ids == sorted(ids, key=lambda s: s.encode("utf-16-be")), "sorting by id orders the rows")
    if hostile_id:
        search = driver.find_element(By.ID, "session-search")
        search.send_keys("<script>")
        found = driver.execute_script(
            "return [...document.querySelectorAll('#sessions-table tbody tr')]"
            ".map(r => r.querySelector('a.sid').textContent)")
        check(hostile_id in found, "searching '<script>' finds the hostile session, shown as text",
              repr(found)[:300])
        check_no_injection(driver, "the sessions page")
        search.clear()
        driver.execute_script("arguments[0].dispatchEvent(new Event('input'))", search)
    console.no_errors("the sessions page")


def check_no_injection(driver, where):
    injected = driver.execute_script(
        "return {xss: window.__xss === undefined ? null : window.__xss,"
        " scripts: document.querySelectorAll('main script, main img, main iframe').length,"
        " bold: document.querySelectorAll('main b, main i').length}")
    check(injected["xss"] is None and injected["scripts"] == 0 and injected["bold"] == 0,
          where + ": no markup from the stream is parsed, no script of it runs", repr(injected))


def check_timeline(console, driver, api, session_id, name):
    fragment = "#/session/" + urllib.parse.quote(session_id, safe="")
    if not console.go(fragment, "document.querySelector('#timeline .step')", name + " loads"):
        return
    shown_id = text_of(driver, "#session-id")
    check(shown_id == session_id, name + ": the session id is shown as text", repr(shown_id)[:200])
    history = api.history(session_id)
    steps = driver.execute_script("return document.querySelectorAll('#timeline .step').length")
    check(steps == len(history), name + ": one step per stored delta", "%d vs %d" % (steps, len(history)))
    gaps = sum(1 for d in history if d["gap"])
    markers = driver.execute_script("return document.querySelectorAll('#timeline .gap-marker').length")
    check(markers == gaps, name + ": each gap is marked", "%d markers, %d gaps" % (markers, gaps))
    inferred = sum(1 for d in history if d["origin"] != "stream")
    marked = driver.execute_script(
        "return document.querySelectorAll('#timeline .step.is-inferred .tag.inferred').length")
    check(marked == inferred, name + ": each inferred step is marked",
          "%d marked, %d inferred" % (marked, inferred))
    return history


def check_analytics(console, driver, api):
    if not console.go("#/analytics?since=30d&tz=UTC", "document.querySelector('#page-analytics[data-loaded]')",
                      "the analytics page loads"):
        return
    answer = api.json("/api/analytics/heatmap?since=30d&tz=UTC")
    cells = driver.execute_script(
        "return [...document.querySelectorAll('#heatmap-weekly .cell[data-count]')]"
        ".map(c => Number(c.getAttribute('data-count')))")
    check(len(cells) == 168, "the weekly heatmap has 168 cells", str(len(cells)))
    check(sum(cells) == answer["total"],
          "the weekly heatmap's cells add up to /api/analytics/heatmap's total",
          "%d vs %d" % (sum(cells), answer["total"]))
    days = driver.execute_script(
        "return [...document.querySelectorAll('#heatmap-calendar .cell[data-date]')]"
        ".map(c => Number(c.getAttribute('data-count')))")
    check(len(days) == len(answer["days"]) and sum(days) == sum(d["deltas"] for d in answer["days"]),
          "the calendar heatmap has every day of the window and its counts",
          "%d days, sum %d" % (len(days), sum(days)))
    charts = driver.execute_script(
        "return [...document.querySelectorAll('canvas')].filter(c => c.width > 0 && c.height > 0).length")
    check(charts >= 2, "the duration histogram and the approvals chart are drawn", str(charts))
    console.no_errors("the analytics page")


def check_first_load(console, driver):
    """What the browser fetched to show the first page: the page and every file it
    pulled in (modules, style, Chart.js), not the API's answers."""
    if not console.wait("document.body.getAttribute('data-page') && document.readyState === 'complete'",
                        "the console's script runs"):
        return
    loaded = driver.execute_script("""
        const files = [performance.getEntriesByType('navigation')[0]].concat(
            performance.getEntriesByType('resource').filter(
                r => !['fetch', 'xmlhttprequest'].includes(r.initiatorType)));
        return files.map(r => [r.name.replace(/^.*\\/ui\\//, ''), r.decodedBodySize]);""")
    total = sum(size for _, size in loaded)
    names = sorted(name.split("#")[0] for name, _ in loaded)
    check("chart.min.js" in names and "console.js" in names and "console.css" in names,
          "the first page load fetches the page, its modules, its style and Chart.js", repr(names))
    check(total <= FIRST_LOAD_LIMIT, "the first page load is at most 300 KB (%d bytes in %d files)"
          % (total, len(loaded)), repr(loaded))


def main():
    args = parse_args()
    api = Api(args.url.rstrip("/"), args.token)
    try:
        driver = start_browser(args)
    except WebDriverException as e:
        print("FAIL: chromium did not start: %s" % e, flush=True)
        return 2
    try:
        console = Console(driver, args)
        driver.get(console.base + "#/")
        check_first_load(console, driver)
        if args.token:
            check_token_prompt(console, driver, args.token)
        check_overview(console, driver, api, args.hostile_id)
        console.screenshot("overview")
        check_sessions(console, driver, api, args.hostile_id)
        console.screenshot("sessions")

        session_id = find_pending_to_in_progress(api)
        if check(session_id is not None, "the API holds a session with planStatus pending → in_progress"):
            check_timeline(console, driver, api, session_id, "a session's timeline")
            changes = driver.execute_script(
                "return [...document.querySelectorAll('#timeline .change')].map(c => c.textContent)")
            check("planStatus: pending → in_progress" in changes,
                  "the timeline shows planStatus: pending → in_progress")
            console.no_errors("a session's timeline")
            console.screenshot("timeline")
        if args.hostile_id:
            check_timeline(console, driver, api, args.hostile_id, "the hostile session's timeline")
            check_no_injection(driver, "the hostile session's timeline")
            console.no_errors("the hostile session's timeline")
            console.screenshot("timeline-hostile")

        check_analytics(console, driver, api)
        console.screenshot("analytics")

        # Dark: the system's preference, as the DevTools protocol emulates it.
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia",
                               {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})
        check_overview(console, driver, api, args.hostile_id, dark=True)
        background = driver.execute_script(
            "const c = getComputedStyle(document.body).backgroundColor.match(/\\d+/g).map(Number);"
            "return (0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2]) / 255")
        check(background < 0.3, "dark mode: the page is dark when the system prefers it", str(background))
        console.screenshot("overview-dark")
        check_analytics(console, driver, api)
        console.screenshot("analytics-dark")
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": []})

        # A phone: 375 CSS pixels wide.
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": PHONE_WIDTH, "height": 812, "deviceScaleFactor": 2, "mobile": True})
        for fragment, ready, name in (
                ("#/sessions", "document.querySelector('#sessions-table tbody tr')", "sessions"),
                ("#/analytics?since=30d&tz=UTC", "document.querySelector('#page-analytics[data-loaded]')",
                 "analytics")):
            console.open(fragment, ready, "the %s page loads at phone width" % name)
            width = driver.execute_script("return document.documentElement.scrollWidth")
            check(width <= PHONE_WIDTH, "the %s page fits a %d px screen" % (name, PHONE_WIDTH),
                  "%d px wide" % width)
            console.no_errors("the %s page at phone width" % name)
            console.screenshot(name + "-phone", max_height=1400)
    finally:
        driver.quit()
    print("%d check(s) failed" % len(failures) if failures else "all checks passed", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
