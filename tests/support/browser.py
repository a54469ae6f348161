"""Headless Chromium (Debian's `chromium`), started per page: loads a URL, lets its scripts and
their fetches finish, and returns the DOM or a screenshot."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

# Without the background-networking flags Chromium keeps calling Google's hosts, which a closed
# network refuses; --no-sandbox because the tests may run as root.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--disable-default-apps"]


def chromium() -> str:
    exe = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        raise RuntimeError("chromium is not installed (apt-get install chromium), or set CHROMIUM")
    return exe


def _run(url: str, extra: list[str], budget_ms: int) -> str:
    profile = tempfile.mkdtemp(prefix="jwt-guard-chromium-")
    try:
        # Virtual time runs only while nothing is loading, so the budget outlasts every fetch.
        cmd = [chromium(), *FLAGS, f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}", *extra, url]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError(f"chromium exited {r.returncode}: {r.stderr[-2000:]}")
        return r.stdout
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def dump_dom(url: str, budget_ms: int = 10000) -> str:
    return _run(url, ["--dump-dom"], budget_ms)


def screenshot(url: str, path: str, size: str = "1280,560", budget_ms: int = 10000) -> None:
    _run(url, [f"--screenshot={path}", f"--window-size={size}"], budget_ms)
