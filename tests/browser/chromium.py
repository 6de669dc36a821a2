"""Debian's Chromium, headless, driven by Playwright: open a page from disk and look at it.

Playwright's own browser download is not used: ``CHROMIUM`` is the system browser (`.ci/run`
installs Debian's ``chromium``). As root Chromium needs ``--no-sandbox`` (Playwright passes it
unless ``chromium_sandbox``); the other flags keep it from calling home, which a machine without
network answers with a stream of refused connections.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import sync_playwright

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
FLAGS = [
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
RENDER_TIMEOUT_MS = 60_000

# What the page says about each chart container once every chart is drawn.
_CHARTS = """() => [...document.querySelectorAll("div.chart")].map((div) => ({
  id: div.id,
  svg: div.querySelector("svg") !== null,
  marks: div.querySelectorAll("svg .mark-rect path, svg .mark-line path, svg .mark-symbol path,"
    + " svg .mark-rule line, svg .mark-text text").length,
  titles: [...div.querySelectorAll(".role-title-text text")].map((t) => t.textContent),
  axis_titles: [...div.querySelectorAll(".role-axis-title text")].map((t) => t.textContent),
  axis_labels: [...div.querySelectorAll(".role-axis-label text")].map((t) => t.textContent),
}))"""


@dataclass
class Opened:
    rendered: str | None  # the body's data-rendered: the number of charts drawn, or "failed"
    charts: list[dict]
    console: list[tuple[str, str]] = field(default_factory=list)  # (type, text)
    page_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)  # every URL the page asked for

    @property
    def errors(self) -> list[str]:
        return [text for kind, text in self.console if kind == "error"] + self.page_errors


def require_chromium() -> str:
    """The browser's path; a test without it skips, except in CI, which must have it."""
    if shutil.which(CHROMIUM) is None:
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    return CHROMIUM


def open_page(path: Path, screenshot: Path, width: int = 1200) -> Opened:
    """Open ``path`` from disk in a fresh profile, wait until its charts are drawn (or failed),
    save a full-page screenshot and report what the page did."""
    executable = require_chromium()
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile, sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            profile,
            executable_path=executable,
            headless=True,
            args=FLAGS,
            viewport={"width": width, "height": 900},
        )
        try:
            page = context.new_page()
            opened = Opened(rendered=None, charts=[])
            page.on("console", lambda m: opened.console.append((m.type, m.text)))
            page.on("pageerror", lambda e: opened.page_errors.append(str(e)))
            page.on("request", lambda r: opened.requests.append(r.url))
            page.goto(path.resolve().as_uri())
            page.wait_for_function("document.body.dataset.rendered", timeout=RENDER_TIMEOUT_MS)
            opened.rendered = page.evaluate("document.body.dataset.rendered")
            opened.charts = page.evaluate(_CHARTS)
            page.screenshot(path=str(screenshot), full_page=True)
            return opened
        finally:
            context.close()


def painted_share(screenshot: Path) -> tuple[float, int]:
    """(share of pixels that are not white, number of distinct colours) of a screenshot."""
    with Image.open(screenshot) as image:
        pixels = image.convert("RGB")
        colours = pixels.getcolors(maxcolors=pixels.width * pixels.height) or []
        white = sum(count for count, colour in colours if colour == (255, 255, 255))
        return 1 - white / (pixels.width * pixels.height), len(colours)
