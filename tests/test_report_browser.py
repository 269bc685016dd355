"""The report page in a real browser: headless Chromium opens report.html offline, logs no console error,
and decodes every <img> (naturalWidth > 0); a screenshot is kept under pytest's tmp dir (path printed).

Chromium is the Debian package ``chromium``; when it is missing the session tries ``apt-get install -y
chromium`` once (as root) and skips these tests, with the reason, if that fails.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

# Not marked slow: a few seconds once Chromium is there, so `make test` (and CI) runs it.

# Injected into a copy of the page, right after <meta charset>: records console.error calls, failed
# resource loads and uncaught errors, then, once the page has loaded, every image's natural width.
CHECK_SCRIPT = """<script>
window.__r1labErrors = [];
(function () {
  const original = console.error.bind(console);
  console.error = function (...args) { window.__r1labErrors.push("console.error: " + args.join(" ")); original(...args); };
  window.addEventListener("error", function (event) {
    const target = event.target;
    if (target && target !== window && target.tagName) {
      window.__r1labErrors.push("failed to load <" + target.tagName.toLowerCase() + "> " + String(target.src || target.href || "").slice(0, 60));
    } else {
      window.__r1labErrors.push("uncaught error: " + event.message);
    }
  }, true);
  window.addEventListener("unhandledrejection", function (event) { window.__r1labErrors.push("unhandled rejection: " + event.reason); });
  window.addEventListener("load", function () {
    const images = Array.from(document.images).map(function (img) {
      return {alt: img.alt, complete: img.complete, naturalWidth: img.naturalWidth, naturalHeight: img.naturalHeight};
    });
    const out = document.createElement("pre");
    out.id = "r1lab-check";
    out.textContent = JSON.stringify({images: images, errors: window.__r1labErrors});
    document.body.appendChild(out);
  });
})();
</script>"""

_BINARIES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def _find_chromium() -> str | None:
    return next((path for path in map(shutil.which, _BINARIES) if path), None)


def _install_chromium() -> str:
    """Try ``apt-get install -y chromium`` (after ``apt-get update`` if the first try fails); why it failed."""
    apt = shutil.which("apt-get")
    if apt is None:
        return "no chromium on PATH and no apt-get to install it"
    if os.geteuid() != 0:
        return "no chromium on PATH, and `apt-get install -y chromium` needs root"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = [apt, "install", "-y", "-q", "chromium"]
    try:
        for attempt in (install, [apt, "update", "-q"], install):
            done = subprocess.run(attempt, capture_output=True, text=True, timeout=900, env=env)
            if attempt is install and done.returncode == 0:
                return ""
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"`apt-get install -y chromium` failed: {error}"
    last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
    return f"`apt-get install -y chromium` failed: {last[0]}"


@pytest.fixture(scope="session")
def chromium() -> str:
    binary = _find_chromium()
    if binary is None:
        reason = _install_chromium()
        binary = _find_chromium()
        if binary is None:
            reason = reason or f"apt-get installed chromium, yet none of {', '.join(_BINARIES)} is on PATH"
            pytest.skip(f"headless Chromium is not available: {reason}")
    return binary


def open_in_chromium(chromium: str, page_path: str, workdir, screenshot: str | None = None) -> tuple[dict, list[str]]:
    """Load a copy of ``page_path`` with the check script in headless Chromium → (the script's findings,
    the console lines Chromium logged)."""
    with open(page_path, encoding="utf-8") as handle:
        page = handle.read()
    checked, count = re.subn(r"(<meta charset=[^>]*>)", lambda m: m.group(1) + CHECK_SCRIPT, page, count=1)
    assert count == 1, "the page has no <meta charset> to put the check script after"
    probe = os.path.join(os.path.dirname(page_path), "._browser_check.html")  # beside the page: same relative paths
    with open(probe, "w", encoding="utf-8") as handle:
        handle.write(checked)
    command = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        f"--user-data-dir={workdir / 'profile'}",
        "--window-size=1280,3000",
        "--enable-logging=stderr",
        "--v=0",
        "--dump-dom",
    ]
    if screenshot:
        command.append(f"--screenshot={screenshot}")
    try:
        done = subprocess.run(
            [*command, "file://" + os.path.abspath(probe)], capture_output=True, text=True, timeout=120
        )
    finally:
        os.unlink(probe)
    assert done.returncode == 0, done.stderr[-2000:]
    found = re.search(r'<pre id="r1lab-check">(.*?)</pre>', done.stdout, re.S)
    assert found, f"the check script did not run; chromium said: {done.stderr[-2000:]}"
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    return json.loads(html.unescape(found.group(1))), console


def test_report_opens_in_chromium_without_errors_and_every_image_loads(chromium, tmp_path, record_property):
    from test_report import pipeline_run

    from r1lab.report import ReportConfig, main

    run = pipeline_run(tmp_path)
    page_path = main(ReportConfig(run_dir=run))["report"]
    page = Path(page_path).read_text(encoding="utf-8")
    # self-contained: every image inline, nothing fetched from a file or the network
    assert re.findall(r'<img [^>]*src="(?!data:image/png;base64,)', page) == []
    assert not re.search(r"(src|href)=[\"'](https?:|//|file:)", page)
    screenshot = str(tmp_path / "report.png")
    found, console = open_in_chromium(chromium, page_path, tmp_path, screenshot)
    assert found["errors"] == [] and console == []
    assert len(found["images"]) == page.count("<img ") == 4
    broken = [image["alt"] for image in found["images"] if not (image["complete"] and image["naturalWidth"] > 0)]
    assert broken == []
    assert os.path.getsize(screenshot) > 10_000
    record_property("screenshot", screenshot)
    print(f"\nreport screenshot: {screenshot}")


def test_the_browser_check_catches_broken_images_and_console_errors(chromium, tmp_path):
    """The check itself: a page with a missing image, an undecodable one and a console error fails it."""
    page_path = tmp_path / "bad.html"
    page_path.write_text(
        "<!doctype html><html><head><meta charset='utf-8'></head><body>"
        "<img alt='missing' src='missing.png'><img alt='garbage' src='data:image/png;base64,AAAA'>"
        "<script>console.error('boom')</script></body></html>",
        encoding="utf-8",
    )
    found, console = open_in_chromium(chromium, str(page_path), tmp_path)
    assert [(image["alt"], image["naturalWidth"]) for image in found["images"]] == [("missing", 0), ("garbage", 0)]
    assert "console.error: boom" in found["errors"]
    assert any(error.startswith("failed to load <img>") for error in found["errors"])
    assert any('"boom"' in line for line in console)
