"""What a visitor feels: `python app.py` started, the page opened in Chromium, the first real example
clicked; seconds from that click to the label and to the views (the heatmap drawn). A checkout whose
examples do not run on click (before 2026-12-07: its page has no #transcript) gets "Recognise emotion"
clicked as soon as the example's words are in the box, as a person would.

  python -m benchmarks.first_click [CHECKOUT ...] [--rounds 3] [--out FILE.json]

Several checkouts take turns, one start each per round, so that the machine's drift falls on all alike.
Needs Debian's chromium and playwright (as the browser tests).
"""
from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from .common import ROOT, median_start, report, served_app

LABELED = "document.querySelector('#label')?.innerText.match(/(neutral|happy|angry|sad)\\s*\\n?\\s*\\d+%/)"
DRAWN = "document.querySelector('#heatmap .hm, #heatmap .heatmaplayer image') !== null"


def first_click(url: str) -> dict:
    """Open the page, click the first real example: -> seconds to the label and to the views."""
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=shutil.which("chromium"), headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"])
        page = browser.new_page(viewport={"width": 1400, "height": 1300})
        page.goto(url)
        button = page.locator("#examples_real button").first
        button.wait_for(timeout=60_000)
        page.wait_for_timeout(1000)   # a person reads the page before clicking
        runs_on_click = page.locator("#transcript").count() > 0
        start = time.perf_counter()
        button.click()
        if not runs_on_click:   # an older checkout: the example only loads its clip and words
            page.wait_for_function("document.querySelector('textarea').value !== ''", timeout=30_000, polling=20)
            page.locator("#run").click()
        page.wait_for_function(LABELED, timeout=60_000, polling=20)
        label = time.perf_counter() - start
        page.wait_for_function(DRAWN, timeout=60_000, polling=20)
        views = time.perf_counter() - start
        browser.close()
    return dict(label_s=label, views_s=views, clicks=1 if runs_on_click else 2)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.first_click", description=__doc__.strip().splitlines()[0])
    parser.add_argument("checkouts", type=Path, nargs="*", default=[ROOT], help="the checkouts' roots (this one)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    runs = {str(root.resolve()): [] for root in args.checkouts}
    for _ in range(args.rounds):
        for root in runs:
            with served_app(Path(root)) as (url, _):
                runs[root].append(first_click(url))
    report({root: median_start(each) | dict(each=each) for root, each in runs.items()}, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
