"""The web app's speeds, in Debian's Chromium against a running `exact serve` (started by
scripts/bench-web.sh on a release build with `exact demo` and a few more slides):

- opening the viewer: from navigation to the first tiles drawn, and to the annotations in view
  listed;
- Q/E: from the key to the next image's first tiles, with the neighbours fetched ahead (as the
  viewer does) and without (`?preload=0`);
- the verification page: from J to the next crop shown.

    python bench.py BASE_URL SLIDE_IDS ROUNDS
"""

import statistics
import sys
import time

from playwright.sync_api import sync_playwright

BASE, IMAGES, ROUNDS = sys.argv[1], [int(i) for i in sys.argv[2].split(",")], int(sys.argv[3])
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def report(name, samples):
    samples = sorted(samples)
    p95 = samples[min(len(samples) - 1, int(round(0.95 * (len(samples) - 1))))]
    print(f"{name}: p50 {statistics.median(samples):.0f} ms, p95 {p95:.0f} ms, n={len(samples)}", flush=True)


def main():
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        context = browser.new_context(viewport={"width": 1920, "height": 1080})
        page = context.new_page()
        page.goto(BASE + "/accounts/login/")
        page.fill("input[name=username]", "exact")
        page.fill("input[name=password]", "exact")
        page.click("button[type=submit]")
        page.wait_for_url(BASE + "/")

        tiles, listed = [], []
        for _ in range(ROUNDS):
            # A fresh context each time: nothing of the slide in the browser's cache.
            fresh = browser.new_context(viewport={"width": 1920, "height": 1080}, storage_state=context.storage_state())
            viewer = fresh.new_page()
            start = time.perf_counter()
            viewer.goto(f"{BASE}/annotations/{IMAGES[0]}/", wait_until="commit")
            viewer.wait_for_selector("#viewer[data-tiles=loaded]", timeout=60_000)
            tiles.append((time.perf_counter() - start) * 1000)
            viewer.wait_for_selector("#count:has-text('loaded')", timeout=60_000)
            listed.append((time.perf_counter() - start) * 1000)
            fresh.close()
        report("viewer open → first tiles drawn", tiles)
        report("viewer open → annotations in view listed", listed)

        for label, query in [("with preloading", ""), ("without preloading", "?preload=0")]:
            samples = []
            for _ in range(ROUNDS):
                fresh = browser.new_context(viewport={"width": 1920, "height": 1080}, storage_state=context.storage_state())
                viewer = fresh.new_page()
                viewer.goto(f"{BASE}/annotations/{IMAGES[0]}/{query}")
                viewer.wait_for_selector("#viewer[data-tiles=loaded]", timeout=60_000)
                # Time for the neighbours to be fetched, as while a person looks at the slide.
                viewer.wait_for_timeout(1500)
                start = time.perf_counter()
                viewer.keyboard.press("e")
                viewer.wait_for_url(f"{BASE}/annotations/{IMAGES[1]}/{query}")
                viewer.wait_for_selector("#viewer[data-tiles=loaded]", timeout=60_000)
                samples.append((time.perf_counter() - start) * 1000)
                fresh.close()
            report(f"E → next image's first tiles, {label}", samples)

        page.goto(f"{BASE}/annotations/{IMAGES[0]}/verify/")
        page.wait_for_selector("#verify[data-shown]", timeout=60_000)
        samples = []
        for _ in range(ROUNDS * 3):
            shown = page.get_attribute("#verify", "data-shown")
            page.wait_for_timeout(300)
            start = time.perf_counter()
            page.keyboard.press("j")
            page.wait_for_selector(f"#verify[data-shown]:not([data-shown='{shown}'])", timeout=60_000)
            samples.append((time.perf_counter() - start) * 1000)
        report("verification: J → next crop shown", samples)
        browser.close()


if __name__ == "__main__":
    main()
