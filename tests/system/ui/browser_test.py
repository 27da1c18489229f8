#!/usr/bin/python3
"""flowlua ui in a real browser: headless Chromium driven by Selenium and
chromedriver (Debian's chromium, chromium-driver and python3-selenium).

Makes a real SQLite history with the built flowlua (flows 'flaky', whose
task logs and then fails until a file exists; 'adder' with a param; 'slow'
that sleeps), starts `flowlua ui --listen 127.0.0.1:0`, and, as a user
would:
  - opens the runs page and filters it by flow and by state;
  - opens the failed run, reads its error, opens its task run and reads
    its log lines;
  - creates the file, presses Resume, and watches the new run's page go to
    Success live (the page is never reloaded: a marker set on its window
    survives);
  - starts 'adder' from the flows page's form with n = 5 and sees the run
    Success with that param;
  - starts 'slow', presses Cancel, and watches it go to Cancelled;
and checks that the browser logged no console error and that no request
left the server (Chrome's performance log lists every request). Saves a
screenshot of each main page in the folder given (test artefacts).

Every wait is for something on the page (a state, a row, a URL), bounded
only by a safety limit for a hung run.

Usage: browser_test.py FLOWLUA_BINARY SCREENSHOT_DIR
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

try:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait
except ImportError as e:
    sys.exit(f"browser_test: cannot import selenium ({e}): install python3-selenium "
             "(tests/install-deps.sh) and run this with Debian's /usr/bin/python3")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from api_test import Ui, expect, results  # noqa: E402

FLOWS = {
    "flaky.lua": """
local flow = require "flowlua"
local function exists(path)
  local f = io.open(path)
  if f then f:close() end
  return f ~= nil
end
local check = flow.task("check <i>", function(path)
  flow.log.info("looking for <b>%s</b>", path)
  if not exists(path) then error("not there yet: <script>x</script> " .. path) end
  -- Found: the run waits for the test's go-ahead, so that its page shows
  -- it Running before it ends.
  while not exists(path .. ".go") do flow.sleep(0.05) end
  return true
end)
return flow.define("flaky", { params = { marker = "" } }, function(p)
  check(p.marker)
end)
""",
    "adder.lua": """
local flow = require "flowlua"
local double = flow.task("double", function(n) return n * 2 end)
return flow.define("adder", {
  params = { n = flow.param.int(1, { min = 1 }), tag = flow.param.string() },
}, function(p) double(p.n) end)
""",
    "slow.lua": """
local flow = require "flowlua"
local wait = flow.task("wait", function(s) flow.sleep(s) return s end)
return flow.define("slow", { params = { seconds = 600 } }, function(p) wait(p.seconds) end)
""",
}
# A safety net for a hung browser or run, not a timing expectation.
LIMIT = 120


def make_history(binary, work):
    state = os.path.join(work, "state.db")
    for name, text in FLOWS.items():
        with open(os.path.join(work, name), "w") as f:
            f.write(text)
    marker = os.path.join(work, "marker")
    for name, extra, rc in (("adder.lua", ["--param", "tag=setup"], 0),
                            ("slow.lua", ["--param", "seconds=0"], 0),
                            ("flaky.lua", ["--param", "marker=" + marker], 1)):
        p = subprocess.run([binary, name, "--state", state, "--no-status", "--quiet", *extra],
                           cwd=work, capture_output=True, text=True)
        if p.returncode != rc:
            sys.exit(f"setting up: {name} exited {p.returncode}, not {rc}:\n{p.stderr}")
    return state, marker


def browser(profile):
    o = webdriver.ChromeOptions()
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
              "--window-size=1280,900", "--user-data-dir=" + profile,
              "--no-first-run", "--disable-background-networking",
              "--disable-component-update", "--disable-sync"):
        o.add_argument(a)
    o.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    chromium = shutil.which("chromium")
    if chromium:
        o.binary_location = chromium
    return webdriver.Chrome(service=Service(shutil.which("chromedriver") or
                                            "/usr/bin/chromedriver"), options=o)


def wait(d, what, cond):
    try:
        return WebDriverWait(d, LIMIT, poll_frequency=0.05).until(lambda _: cond())
    except Exception as e:  # a timeout, or the page gone mid-check
        expect(False, what, f"{type(e).__name__} at {d.current_url}")
        return None


def text_of(d, css):
    found = d.find_elements(By.CSS_SELECTOR, css)
    return found[0].text if found else None


def shot(d, folder, name):
    d.save_screenshot(os.path.join(folder, name))


def check_runs_page(d, base, shots):
    d.get(base)
    wait(d, "the runs page lists the runs",
         lambda: len(d.find_elements(By.CSS_SELECTOR, "#runs tbody tr")) == 3)
    shot(d, shots, "runs.png")
    # A phone's width: the page fits it, nothing to scroll sideways.
    d.set_window_size(390, 844)
    d.get(base)
    wait(d, "the runs page on a phone's width",
         lambda: len(d.find_elements(By.CSS_SELECTOR, "#runs tbody tr")) == 3)
    wide = d.execute_script("return document.documentElement.scrollWidth - "
                            "document.documentElement.clientWidth;")
    expect(wide <= 0, "the runs page fits a phone's width", wide)
    shot(d, shots, "runs-phone.png")
    d.set_window_size(1280, 900)
    d.get(base)
    wait(d, "the runs page again",
         lambda: len(d.find_elements(By.CSS_SELECTOR, "#runs tbody tr")) == 3)
    box = d.find_element(By.ID, "f-flow")
    box.clear()
    box.send_keys("flaky")
    Select(d.find_element(By.ID, "f-state")).select_by_visible_text("Failed")
    d.find_element(By.CSS_SELECTOR, "#filter button[type=submit]").click()
    wait(d, "the filter goes into the URL",
         lambda: "flow=flaky" in d.current_url and "state=Failed" in d.current_url)
    rows = wait(d, "the filtered list: the one failed run of flaky",
                lambda: [r for r in d.find_elements(By.CSS_SELECTOR, "#runs tbody tr")
                         if "flaky" in r.text] or None)
    expect(rows and len(d.find_elements(By.CSS_SELECTOR, "#runs tbody tr")) == 1,
           "the filter leaves one run", d.page_source[:300])
    if rows:
        rows[0].find_element(By.CSS_SELECTOR, "a").click()


def check_failed_run(d, shots):
    wait(d, "the failed run's page shows Failed", lambda: text_of(d, "#r-state") == "Failed")
    err = wait(d, "its task's error is shown",
               lambda: "not there yet: <script>x</script>" in d.find_element(By.TAG_NAME, "body").text)
    expect(err, "the error shows as text, its HTML escaped")
    shot(d, shots, "run-failed.png")
    run_url = d.current_url
    links = d.find_elements(By.CSS_SELECTOR, "a[href*='/tasks/']")
    expect(links, "the task run links to its page")
    if links:
        links[0].click()
        wait(d, "the task run's page shows its log line",
             lambda: "looking for <b>" in d.find_element(By.TAG_NAME, "body").text)
        shot(d, shots, "task.png")
        d.get(run_url)
        wait(d, "back on the failed run", lambda: text_of(d, "#r-state") == "Failed")


def check_resume(d, marker, shots):
    open(marker, "w").close()
    button = wait(d, "the Resume button is shown", lambda: (
        d.find_elements(By.ID, "resume") and d.find_element(By.ID, "resume").is_displayed()
        and d.find_element(By.ID, "resume")))
    old_url = d.current_url
    if not button:
        return
    button.click()
    wait(d, "Resume opens the new run's page",
         lambda: d.current_url != old_url and "/runs/" in d.current_url)
    wait(d, "the resumed run shows Running", lambda: text_of(d, "#r-state") == "Running")
    d.execute_script("window.__flowluaNoReload = 1;")
    open(marker + ".go", "w").close()
    wait(d, "the resumed run goes to Success on its page, live",
         lambda: text_of(d, "#r-state") == "Success")
    expect(d.execute_script("return window.__flowluaNoReload === 1;"),
           "the page was not reloaded on the way")
    # The graph and the timeline are drawn: each canvas sized past its
    # placeholder (10 x 10) and holding pixels that are not all blank.
    for canvas in ("graph", "timeline"):
        drawn = wait(d, f"the run's {canvas} is drawn", lambda: d.execute_script(
            "const c = document.getElementById(arguments[0]);"
            "if (!c || c.width <= 10 || c.height <= 10) return false;"
            "const px = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
            "for (let i = 3; i < px.length; i += 4) if (px[i]) return true;"
            "return false;", canvas))
        expect(drawn, f"the {canvas} canvas holds a drawing")
    shot(d, shots, "run-resumed.png")


def start_from_form(d, base, flow, params):
    d.get(base + "flows")
    form = wait(d, f"the flows page has {flow}'s form", lambda: d.find_elements(
        By.CSS_SELECTOR, f"section.flow[id='flow-{flow}'] form.start") or None)
    if not form:
        return False
    for name, value in params.items():
        box = form[0].find_element(By.NAME, "param." + name)
        box.clear()
        box.send_keys(value)
    form[0].find_element(By.CSS_SELECTOR, "button").click()
    return wait(d, f"starting {flow} opens its run's page", lambda: "/runs/" in d.current_url)


def check_start_and_cancel(d, base, shots):
    d.get(base + "flows")
    wait(d, "the flows page lists the three flows",
         lambda: len(d.find_elements(By.CSS_SELECTOR, "section.flow")) == 3)
    shot(d, shots, "flows.png")
    # Typed params: described on their inputs; a required one (no default)
    # has an empty, required input.
    d.get(base + "flows")
    boxes = wait(d, "adder's form has its typed params", lambda: d.find_elements(
        By.CSS_SELECTOR, "section.flow[id='flow-adder'] form.start input[name='param.tag']"))
    if boxes:
        tag = boxes[0]
        n = d.find_element(By.CSS_SELECTOR,
                           "section.flow[id='flow-adder'] form.start input[name='param.n']")
        expect(n.get_attribute("value") == "1" and n.get_attribute("title") == "integer >= 1",
               "n: its default and its type", (n.get_attribute("value"), n.get_attribute("title")))
        expect(tag.get_attribute("value") == "" and tag.get_attribute("required") is not None
               and tag.get_attribute("placeholder") == "string (required)",
               "tag: empty, required", (tag.get_attribute("value"),
                                        tag.get_attribute("required"),
                                        tag.get_attribute("placeholder")))
    if start_from_form(d, base, "adder", {"n": "5", "tag": "from the form"}):
        wait(d, "the started run shows Success", lambda: text_of(d, "#r-state") == "Success")
        params = text_of(d, "#r-params") or ""
        expect('"n": 5' in params, "the run has n = 5", params)
        expect("started by this UI" in (text_of(d, "#message") or ""),
               "the page says where the run runs", text_of(d, "#message"))
    if start_from_form(d, base, "slow", {}):
        wait(d, "slow shows Running", lambda: text_of(d, "#r-state") == "Running")
        button = wait(d, "the Cancel button is shown", lambda: (
            d.find_element(By.ID, "cancel").is_displayed() and d.find_element(By.ID, "cancel")))
        if button:
            shot(d, shots, "run-running.png")
            button.click()
            wait(d, "the cancelled run shows Cancelled, live",
                 lambda: text_of(d, "#r-state") == "Cancelled")


def check_browser_logs(d, base):
    severe = [e for e in d.get_log("browser") if e.get("level") == "SEVERE"]
    expect(not severe, "no console error", severe)
    outside = set()
    for entry in d.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg.get("method") == "Network.requestWillBeSent":
            url = msg["params"]["request"]["url"]
            # The browser's own pages (chrome://) are not the UI's requests.
            if url.split(":", 1)[0] in ("http", "https", "ws", "wss") and \
                    not url.startswith(base):
                outside.add(url)
    expect(not outside, "no request leaves the server", sorted(outside))


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    binary = os.path.abspath(sys.argv[1])
    shots = os.path.abspath(sys.argv[2])
    os.makedirs(shots, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="flowlua-ui-browser-") as work:
        state, marker = make_history(binary, work)
        ui = Ui(binary, ["--state", state, "--listen", "127.0.0.1:0"])
        base = ui.wait_listening()
        expect(base is not None, "flowlua ui listens", ui.lines)
        d = browser(os.path.join(work, "profile")) if base else None
        try:
            if d:
                check_runs_page(d, base, shots)
                check_failed_run(d, shots)
                check_resume(d, marker, shots)
                check_start_and_cancel(d, base, shots)
                check_browser_logs(d, base)
        finally:
            if d:
                d.quit()
            rc, log = ui.stop()
        expect(rc == 0, "flowlua ui stops with 0", (rc, log))
    print(f"{results['passed']} passed, {results['failed']} failed")
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
