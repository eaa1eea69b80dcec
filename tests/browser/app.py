"""The web app in a real browser: Debian's Chromium, headless, driven by Playwright, against a
real `exact serve` on a fresh SQLite store (started by api/tests/browser.rs).

    python app.py BASE_URL SLIDE.svs PICTURE.png SCREENSHOT_DIR

Every page of every step is watched: a console error, a failed request, an answer of 500 or
more, or an uncaught exception fails the run. A screenshot of the page is kept in
SCREENSHOT_DIR when a step fails. The last line is `N passed, 0 failed`.
"""

import base64
import hashlib
import json
import re
import sys
import traceback
import zipfile
from pathlib import Path

from playwright.sync_api import sync_playwright, expect

BASE, SLIDE, PICTURE, SHOTS, SERIES = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4]), Path(sys.argv[5])
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


class Watched:
    """A page whose console errors, failed requests and uncaught exceptions are collected."""

    def __init__(self, context, name):
        self.name = name
        self.page = context.new_page()
        self.problems = []
        # Requests the test itself ends by leaving a page are not failures of the app.
        self.leaving = False
        # Refusals a step provokes on purpose: (method, path, status).
        self.expected = set()
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda e: self.problems.append(f"uncaught: {e}"))
        self.page.on("requestfailed", self._failed)
        self.page.on("response", self._response)

    def _console(self, message):
        # Chromium logs every answer of 400 or more as a console error; answers are judged
        # by the response handler, which knows the refusals a step expects.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.problems.append(f"console error: {message.text}")

    def _failed(self, request):
        failure = request.failure or ""
        if "ERR_ABORTED" in failure and (self.leaving or request.resource_type in ("image", "fetch")):
            return
        self.problems.append(f"request failed: {request.method} {request.url} ({failure})")

    def _response(self, response):
        if response.status < 400:
            return
        path = response.url.removeprefix(BASE).split("?")[0]
        if (response.request.method, path, response.status) not in self.expected:
            self.problems.append(f"{response.status} from {response.request.method} {response.url}")

    def goto(self, path):
        self.leaving = True
        self.page.goto(BASE + path)
        self.leaving = False

    def check(self):
        assert not self.problems, f"{self.name}: " + "; ".join(self.problems)


def login(context, username, password, name):
    page = Watched(context, name)
    page.goto("/")
    assert "/accounts/login/" in page.page.url, page.page.url
    page.page.fill("input[name=username]", username)
    page.page.fill("input[name=password]", password)
    page.page.click("button[type=submit]")
    page.page.wait_for_url(BASE + "/")
    return page


def rest(page, method, path, body=None):
    """The REST API through the page's own session, as the page's scripts call it."""
    token = page.page.get_attribute('meta[name="csrf-token"]', "content")
    options = {"headers": {"X-CSRFToken": token, "Accept": "application/json"}}
    if body is not None:
        options["data"] = body
    answer = page.page.request.fetch(BASE + "/api/v1" + path, method=method, **options)
    text = answer.text()
    return answer.status, (json.loads(text) if text else None)


def drop_files(page, selector, files):
    """Drops files on an element as a person dragging them from their desktop does."""
    payload = [
        {"name": name, "data": base64.b64encode(data).decode(), "type": kind}
        for name, data, kind in files
    ]
    page.page.evaluate(
        """([selector, files]) => {
            const transfer = new DataTransfer();
            for (const f of files) {
                const bytes = Uint8Array.from(atob(f.data), (c) => c.charCodeAt(0));
                transfer.items.add(new File([bytes], f.name, { type: f.type }));
            }
            const target = document.querySelector(selector);
            target.dispatchEvent(new DragEvent("dragover", { dataTransfer: transfer, bubbles: true, cancelable: true }));
            target.dispatchEvent(new DragEvent("drop", { dataTransfer: transfer, bubbles: true, cancelable: true }));
        }""",
        [selector, payload],
    )


def osd_box(page):
    return page.page.locator("#osd").bounding_box()


def main():
    passed, failed = 0, 0
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        admin_context = browser.new_context(viewport={"width": 1280, "height": 800})
        watched = []
        state = {}

        def step(name, run):
            nonlocal passed, failed
            try:
                run()
                for page in watched:
                    page.check()
                passed += 1
                print(f"ok: {name}", flush=True)
            except Exception:
                failed += 1
                print(f"FAILED: {name}\n{traceback.format_exc()}", flush=True)
                for page in watched:
                    shot = SHOTS / f"{name.replace(' ', '_')}-{page.name}.png"
                    try:
                        page.page.screenshot(path=str(shot))
                        print(f"  screenshot: {shot}")
                    except Exception:
                        pass
                    page.problems.clear()

        def log_in_as_exact():
            page = login(admin_context, "exact", "exact", "admin")
            watched.append(page)
            state["admin"] = page
            expect(page.page.locator(".who")).to_have_text("exact")

        def make_team_user_set_and_types():
            page = state["admin"]
            status, team = rest(page, "POST", "/users/teams/", {"name": "Pathology"})
            assert status == 201, team
            status, user = rest(page, "POST", "/users/users/", {"username": "bea", "password": "bea-password"})
            assert status == 201, user
            status, member = rest(page, "POST", "/users/team_membership/", {"team": team["id"], "user": user["id"]})
            assert status == 201, member
            status, image_set = rest(page, "POST", "/images/image_sets/", {"name": "Biopsies <b>&amp;</b>", "team": team["id"]})
            assert status == 201, image_set
            status, product = rest(page, "POST", "/administration/products/", {"name": "Cells", "team": team["id"], "imagesets": [image_set["id"]]})
            assert status == 201, product
            types = {}
            for name, vector_type, colour in [("mitosis", 1, "#CC4444"), ("nucleus", 2, "#22AA44"), ("tumour region", 5, "#3355DD")]:
                status, made = rest(page, "POST", "/annotations/annotation_types/", {"name": name, "product": product["id"], "vector_type": vector_type, "color_code": colour})
                assert status == 201, made
                types[name] = made["id"]
            state.update(team=team["id"], set=image_set["id"], types=types)
            # The set is on the home page, its name shown as text, never as markup.
            page.goto("/")
            expect(page.page.locator("#sets .card strong")).to_have_text("Biopsies <b>&amp;</b>")

        def upload_by_drag_and_drop():
            page = state["admin"]
            page.goto(f"/images/imageset/{state['set']}/")
            page.expected.add(("POST", "/api/v1/images/images/", 422))
            drop_files(
                page,
                "#drop",
                [
                    ("biopsy.svs", SLIDE.read_bytes(), "image/tiff"),
                    ("notes.txt", b"these are notes, not an image", "text/plain"),
                    ("cells.png", PICTURE.read_bytes(), "image/png"),
                ],
            )
            rows = page.page.locator("#progress li")
            expect(rows).to_have_count(3)
            expect(page.page.locator("#progress li.done")).to_have_count(2, timeout=60_000)
            refused = page.page.locator("#progress li.failed")
            expect(refused).to_have_count(1)
            expect(refused.locator(".name")).to_have_text("notes.txt")
            expect(refused.locator(".note")).to_contain_text("notes.txt: unsupported")
            status, images = rest(page, "GET", f"/images/images/?image_set={state['set']}")
            names = sorted(i["name"] for i in images["results"])
            assert names == ["biopsy.svs", "cells.png"], names
            state["images"] = {i["name"]: i["id"] for i in images["results"]}
            expect(page.page.locator("#images .thumb")).to_have_count(2)
            page.expected.clear()

        def draw_a_box_and_a_polygon():
            page = state["admin"]
            slide = state["images"]["biopsy.svs"]
            page.goto(f"/annotations/{slide}/")
            expect(page.page.locator("#viewer")).to_have_attribute("data-tiles", "loaded", timeout=30_000)
            page.page.wait_for_timeout(800)
            box = osd_box(page)
            page.page.keyboard.press("1")
            x, y = box["x"] + 300, box["y"] + 250
            page.page.mouse.move(x, y)
            page.page.mouse.down()
            page.page.mouse.move(x + 60, y + 40, steps=4)
            page.page.mouse.move(x + 150, y + 100, steps=4)
            page.page.mouse.up()
            expect(page.page.locator("#status")).to_contain_text("saved #", timeout=10_000)
            page.page.keyboard.press("3")
            for dx, dy in [(500, 300), (600, 320), (560, 420)]:
                page.page.mouse.click(box["x"] + dx, box["y"] + dy)
                page.page.wait_for_timeout(300)
            page.page.keyboard.press("Enter")
            expect(page.page.locator("#count")).to_have_text("(2 loaded)", timeout=10_000)
            status, found = rest(page, "GET", f"/annotations/annotations/?image={slide}")
            by_type = {a["annotation_type"]: a for a in found["results"]}
            drawn_box = by_type[state["types"]["mitosis"]]["vector"]
            width, height = drawn_box["x2"] - drawn_box["x1"], drawn_box["y2"] - drawn_box["y1"]
            assert abs(width / height - 1.5) < 0.05, drawn_box
            polygon = by_type[state["types"]["tumour region"]]["vector"]
            assert sorted(polygon) == ["x1", "x2", "x3", "y1", "y2", "y3"], polygon
            state["box"] = by_type[state["types"]["mitosis"]]
            # After a reload the box is where it was drawn: a click inside it selects it.
            page.goto(f"/annotations/{slide}/")
            expect(page.page.locator("#count")).to_have_text("(2 loaded)", timeout=30_000)
            page.page.wait_for_timeout(800)
            page.page.mouse.click(x + 75, y + 50)
            expect(page.page.locator("#viewer")).to_have_attribute("data-selected", str(state["box"]["id"]))

        def move_and_delete_with_the_keys():
            page = state["admin"]
            box = osd_box(page)
            x, y = box["x"] + 300, box["y"] + 250
            before = state["box"]["vector"]
            page.page.mouse.move(x + 75, y + 50)
            page.page.mouse.down()
            page.page.mouse.move(x + 95, y + 60, steps=3)
            page.page.mouse.move(x + 115, y + 70, steps=3)
            page.page.mouse.up()
            page.page.keyboard.press("Enter")
            expect(page.page.locator("#status")).to_have_text(f"saved #{state['box']['id']}", timeout=10_000)
            status, moved = rest(page, "GET", f"/annotations/annotations/{state['box']['id']}/")
            dx, dy = moved["vector"]["x1"] - before["x1"], moved["vector"]["y1"] - before["y1"]
            assert dx > 0 and dy > 0 and abs(dx / dy - 2.0) < 0.2, (before, moved["vector"])
            assert moved["vector"]["x2"] - moved["vector"]["x1"] == before["x2"] - before["x1"]
            assert moved["version"] == state["box"]["version"] + 1, moved
            page.page.keyboard.press("x")
            expect(page.page.locator("#status")).to_have_text(f"deleted #{state['box']['id']}", timeout=10_000)
            status, gone = rest(page, "GET", f"/annotations/annotations/{state['box']['id']}/")
            assert gone["deleted"] is True, gone

        def a_stale_edit_is_not_saved():
            page = state["admin"]
            slide = state["images"]["biopsy.svs"]
            status, found = rest(page, "GET", f"/annotations/annotations/?image={slide}&deleted=false")
            polygon = found["results"][0]
            page.page.fill("#filter", f"@id:{polygon['id']}")
            page.page.locator("#list button").first.click()
            expect(page.page.locator("#viewer")).to_have_attribute("data-selected", str(polygon["id"]))
            page.page.wait_for_timeout(700)
            centre = osd_box(page)
            cx, cy = centre["x"] + centre["width"] / 2, centre["y"] + centre["height"] / 2
            page.page.mouse.move(cx, cy)
            page.page.mouse.down()
            page.page.mouse.move(cx + 20, cy + 20, steps=3)
            page.page.mouse.up()
            expect(page.page.locator("#status")).to_contain_text("Enter or V saves")
            # Someone else changes it while this edit is not saved yet.
            status, _ = rest(page, "PATCH", f"/annotations/annotations/{polygon['id']}/", {"description": "changed elsewhere"})
            assert status == 200
            page.expected.add(("PATCH", f"/api/v1/annotations/annotations/{polygon['id']}/", 412))
            page.page.keyboard.press("v")
            expect(page.page.locator("#status")).to_contain_text("was changed by user", timeout=10_000)
            expect(page.page.locator("#status")).to_contain_text("yours dashed")
            status, now = rest(page, "GET", f"/annotations/annotations/{polygon['id']}/")
            assert now["vector"] == polygon["vector"], "the stale edit was not written"
            expect(page.page.locator("#details")).to_contain_text("changed elsewhere")
            page.expected.clear()
            # Saving on purpose over the other version, now that it was seen.
            page.page.keyboard.press("Enter")
            expect(page.page.locator("#status")).to_have_text(f"saved #{polygon['id']}")
            status, mine = rest(page, "GET", f"/annotations/annotations/{polygon['id']}/")
            assert mine["vector"] != polygon["vector"] and mine["description"] == "changed elsewhere", mine
            page.page.fill("#filter", "")

        def q_and_e_move_between_images():
            page = state["admin"]
            slide, picture = state["images"]["biopsy.svs"], state["images"]["cells.png"]
            page.goto(f"/annotations/{slide}/")
            expect(page.page.locator("#viewer")).to_have_attribute("data-tiles", "loaded", timeout=30_000)
            # With the neighbour's facts fetched ahead, E shows it in the same page.
            expect(page.page.locator("#viewer")).to_have_attribute("data-ahead", re.compile(str(picture)), timeout=10_000)
            # ... and its descriptor and first tiles, which the browser then has at hand.
            expect(page.page.locator("#viewer")).to_have_attribute("data-ahead-tiles", re.compile(f"(^|,){picture}:[1-9]"), timeout=10_000)
            page.page.evaluate("window.stayedInPage = true")
            pressed = page.page.evaluate("performance.now()")
            page.page.keyboard.press("e")
            page.page.wait_for_url(f"{BASE}/annotations/{picture}/")
            expect(page.page.locator("#viewer")).to_have_attribute("data-tiles", "loaded", timeout=30_000)
            fetched = page.page.evaluate(
                """([since, id]) => performance.getEntriesByType('resource')
                    .filter((e) => e.startTime > since && e.name.includes(`/images/image/${id}/1/1/tile`))
                    .map((e) => [e.name, e.transferSize])""",
                [pressed, picture],
            )
            descriptor = [size for name, size in fetched if name.endswith("/tile/")]
            assert descriptor == [0], f"the descriptor was not taken from the cache: {fetched}"
            cached = [name for name, size in fetched if "tile_files" in name and size == 0]
            assert cached, f"no preloaded tile was used: {fetched}"
            expect(page.page.locator("#crumb-image")).to_have_text("cells.png")
            assert page.page.evaluate("window.stayedInPage") is True
            expect(page.page.locator("#previous")).to_have_attribute("href", f"/annotations/{slide}/")
            page.page.keyboard.press("q")
            page.page.wait_for_url(f"{BASE}/annotations/{slide}/")
            expect(page.page.locator("#viewer")).to_have_attribute("data-tiles", "loaded", timeout=30_000)
            expect(page.page.locator("#count")).to_have_text("(1 loaded)", timeout=10_000)
            # A page of its own, fetched whole, when the facts are not there yet.
            page.leaving = True
            page.goto(f"/annotations/{picture}/?preload=0")
            expect(page.page.locator("#viewer")).to_have_attribute("data-tiles", "loaded", timeout=30_000)
            page.page.keyboard.press("q")
            page.page.wait_for_url(f"{BASE}/annotations/{slide}/?preload=0")
            expect(page.page.locator("#viewer")).to_have_attribute("data-tiles", "loaded", timeout=30_000)
            page.leaving = False

        def the_viewer_panel_scale_annotators_flags_and_adjustments():
            page = state["admin"]
            slide = state["images"]["biopsy.svs"]
            page.goto(f"/annotations/{slide}/")
            expect(page.page.locator("#count")).to_have_text("(1 loaded)", timeout=30_000)
            expect(page.page.locator("#scale .scale-label")).to_contain_text("µm")
            # Hiding the only annotator hides their shapes: a click finds nothing to select.
            status, found = rest(page, "GET", f"/annotations/annotations/?image={slide}&deleted=false")
            polygon = found["results"][0]
            page.page.fill("#filter", f"@id:{polygon['id']}")
            page.page.locator("#list button").first.click()
            expect(page.page.locator("#viewer")).to_have_attribute("data-selected", str(polygon["id"]))
            page.page.check("#concealed")
            expect(page.page.locator("#status")).to_have_text(f"#{polygon['id']} concealed")
            status, now = rest(page, "GET", f"/annotations/annotations/{polygon['id']}/")
            assert now["concealed"] is True, now
            # Shift+click adds a node, Alt+click on it takes it away again; Enter saves each.
            page.page.wait_for_timeout(700)
            centre = osd_box(page)
            cx, cy = centre["x"] + centre["width"] / 2, centre["y"] + centre["height"] / 2
            for modifier, count in [("Shift", 4), ("Alt", 3)]:
                page.page.keyboard.down(modifier)
                page.page.mouse.click(cx, cy)
                page.page.keyboard.up(modifier)
                expect(page.page.locator("#status")).to_contain_text("nodes changed")
                page.page.keyboard.press("Enter")
                expect(page.page.locator("#status")).to_have_text(f"saved #{polygon['id']}")
                status, now = rest(page, "GET", f"/annotations/annotations/{polygon['id']}/")
                assert len(now["vector"]) == 2 * count, (modifier, now["vector"])
            page.page.fill("#filter", "")
            expect(page.page.locator("#annotators label")).to_have_count(1)
            expect(page.page.locator("#annotators label")).to_contain_text("exact (you)")
            page.page.fill("#brightness", "150")
            page.page.check("#invert")
            style = page.page.get_attribute("#osd .openseadragon-canvas", "style") or ""
            assert "brightness(150%)" in style and "invert(1)" in style, style

        def another_user_sees_them():
            context = browser.new_context(viewport={"width": 1920, "height": 1080})
            page = login(context, "bea", "bea-password", "bea")
            watched.append(page)
            state["bea"] = page
            slide = state["images"]["biopsy.svs"]
            page.goto(f"/annotations/{slide}/")
            expect(page.page.locator("#count")).to_have_text("(1 loaded)", timeout=30_000)
            expect(page.page.locator("#list button")).to_have_count(1)

        def the_set_page_counts_match_the_api():
            page = state["admin"]
            page.goto(f"/images/imageset/{state['set']}/")
            for name, image in state["images"].items():
                status, found = rest(page, "GET", f"/annotations/annotations/?image={image}&deleted=false&limit=1")
                shown = page.page.locator(f'.thumb[data-image="{image}"] .count')
                expect(shown).to_have_text(str(found["count"]))
            # The slide's one live annotation is a tumour region, counted by its type.
            slide = state["images"]["biopsy.svs"]
            expect(page.page.locator(f'.thumb[data-image="{slide}"] .per-type')).to_have_text("tumour region 1")

        def set_settings_filters_and_a_new_set():
            page = state["admin"]
            page.goto(f"/images/imageset/{state['set']}/")
            page.page.click("#set-settings summary")
            form = page.page.locator("#set-settings form")
            form.locator('textarea[name="description"]').fill("Needle biopsies")
            form.locator('input[name="tags"]').fill("liver, 2026")
            form.locator('input[name="public"]').check()
            form.locator('select[name="priority"]').select_option("1")
            form.locator('button[type="submit"]').click()
            page.page.wait_for_load_state("load")
            expect(page.page.locator("main > p").first).to_have_text("Needle biopsies")
            status, stored = rest(page, "GET", f"/images/image_sets/{state['set']}/")
            assert stored["description"] == "Needle biopsies" and stored["public"] is True, stored
            assert sorted(stored["tags"]) == ["2026", "liver"] and stored["priority"] == 1, stored
            thumbs = page.page.locator("#images .thumb:visible")
            page.page.select_option("#filter", "empty")
            expect(thumbs).to_have_count(1)
            expect(thumbs.locator(".name")).to_have_text("cells.png")
            page.page.select_option("#filter", f"type:{state['types']['tumour region']}")
            expect(thumbs).to_have_count(1)
            expect(thumbs.locator(".name")).to_have_text("biopsy.svs")
            page.page.select_option("#filter", "all")
            expect(thumbs).to_have_count(2)
            page.goto("/")
            # The images opened lately, newest first.
            expect(page.page.locator("#recent li").first).to_contain_text("biopsy.svs")
            expect(page.page.locator("#recent li")).to_have_count(2)
            page.page.fill('#new-set input[name="name"]', "Second cohort")
            page.page.click('#new-set button[type="submit"]')
            expect(page.page.locator("#sets .card strong", has_text="Second cohort")).to_have_count(1)
            # The search finds sets by their names and by the names of their images.
            cards = page.page.locator("#sets .card:visible")
            page.page.fill("#search", "cohort")
            expect(cards).to_have_count(1)
            page.page.fill("#search", "cells.png")
            expect(cards.locator("strong")).to_have_text("Biopsies <b>&amp;</b>")
            page.page.fill("#search", "")
            expect(cards).to_have_count(2)
            # By tag: the set tagged above.
            page.page.select_option("#tag", "liver")
            expect(cards).to_have_count(1)
            expect(cards.locator(".tag")).to_have_text(["2026", "liver"])
            page.page.select_option("#tag", "")

        def verify_with_j_and_k():
            page = state["admin"]
            slide = state["images"]["biopsy.svs"]
            made = []
            for i in range(2):
                status, a = rest(page, "POST", "/annotations/annotations/", {
                    "image": slide, "annotation_type": state["types"]["mitosis"],
                    "vector": {"x1": 1000 + 300 * i, "y1": 1000, "x2": 1200 + 300 * i, "y2": 1150}})
                assert status == 201, a
                made.append(a["id"])
            page.goto(f"/annotations/{slide}/verify/")
            root = page.page.locator("#verify")
            expect(root).to_have_attribute("data-ready", "true", timeout=20_000)
            page.page.select_option("#type", str(state["types"]["mitosis"]))
            expect(root).to_have_attribute("data-shown", str(made[0]), timeout=20_000)
            page.page.keyboard.press("j")
            expect(page.page.locator("#status")).to_have_text(f"#{made[0]} accepted")
            expect(root).to_have_attribute("data-shown", str(made[1]), timeout=20_000)
            page.page.keyboard.press("k")
            expect(page.page.locator("#status")).to_have_text(f"#{made[1]} rejected")
            expect(page.page.locator("#progress")).to_have_text("2 of 3 judged by you")
            status, me = rest(page, "GET", "/auth/session/")
            status, verdicts = rest(page, "GET", f"/annotations/verifications/?user={me['id']}")
            judged = {v["annotation"]: v["verified"] for v in verdicts["results"]}
            assert judged == {made[0]: True, made[1]: False}, judged
            # Only those not judged yet: the polygon is left.
            page.page.select_option("#type", "")
            page.page.check("#unverified")
            expect(page.page.locator("#caption")).to_contain_text("tumour region")
            # The viewer's search finds the judged ones, and the others.
            page.goto(f"/annotations/{slide}/")
            expect(page.page.locator("#viewer")).to_have_attribute("data-ready", "true", timeout=30_000)
            page.page.fill("#filter", "@verified:true")
            expect(page.page.locator("#list button")).to_have_count(2)
            page.page.fill("#filter", "@verified:false")
            expect(page.page.locator("#list button")).to_have_count(1)
            page.page.fill("#filter", "")

        def clinical_mode_signs_verdicts_and_asks_reasons():
            page = state["admin"]
            slide = state["images"]["biopsy.svs"]
            page.goto(f"/images/imageset/{state['set']}/")
            page.page.click("#set-settings summary")
            form = page.page.locator("#set-settings form")
            form.locator('input[name="clinical"]').check()
            form.locator('button[type="submit"]').click()
            page.page.wait_for_load_state("load")
            expect(page.page.locator("#clinical-mode")).to_be_visible()
            status, a = rest(page, "POST", "/annotations/annotations/", {
                "image": slide, "annotation_type": state["types"]["mitosis"],
                "vector": {"x1": 2000, "y1": 1000, "x2": 2200, "y2": 1150}})
            assert status == 201, a
            page.goto(f"/annotations/{slide}/verify/")
            root = page.page.locator("#verify")
            expect(root).to_have_attribute("data-ready", "true", timeout=20_000)
            page.page.select_option("#type", str(state["types"]["mitosis"]))
            page.page.check("#unverified")
            expect(root).to_have_attribute("data-shown", str(a["id"]), timeout=20_000)
            page.page.evaluate("document.activeElement.blur()")  # keys go to the page, not the box
            # J asks for the password; a wrong one signs nothing.
            page.expected.add(("POST", "/api/v1/annotations/verifications/", 403))
            page.page.keyboard.press("j")
            dialog = page.page.locator("dialog.clinical")
            expect(dialog).to_be_visible()
            expect(dialog.locator('select[name="meaning"] option')).to_have_text(["approved", "reviewed"])
            dialog.locator('input[name="password"]').fill("wrong")
            dialog.locator('button[type="submit"]').click()
            expect(page.page.locator("#status")).to_contain_text("not signed: the password is not yours")
            # Cancelling signs nothing either.
            page.page.keyboard.press("j")
            dialog.locator("button", has_text="Cancel").click()
            expect(page.page.locator("#status")).to_have_text(f"#{a['id']}: not signed")
            page.page.keyboard.press("j")
            dialog.locator('input[name="password"]').fill("exact")
            dialog.locator('select[name="meaning"]').select_option("reviewed")
            dialog.locator('button[type="submit"]').click()
            expect(page.page.locator("#status")).to_have_text(f"#{a['id']} signed reviewed by exact")
            status, verdicts = rest(page, "GET", f"/annotations/verifications/?annotation={a['id']}")
            signature = verdicts["results"][0]["signature"]
            assert signature["name"] == "exact" and signature["meaning"] == "reviewed", signature
            assert signature["annotation_version"] == 1 and signature["applies_to_current_version"], signature
            # In the viewer, deleting the signed annotation asks why; the reason is kept.
            page.goto(f"/annotations/{slide}/")
            viewer = page.page.locator("#viewer")
            expect(viewer).to_have_attribute("data-ready", "true", timeout=30_000)
            for _ in range(20):
                if viewer.get_attribute("data-selected") == str(a["id"]):
                    break
                page.page.keyboard.press("c")
            expect(viewer).to_have_attribute("data-selected", str(a["id"]))
            page.expected.add(("DELETE", f"/api/v1/annotations/annotations/{a['id']}/", 422))
            page.page.keyboard.press("x")
            expect(dialog).to_be_visible()
            expect(dialog.locator("h2")).to_have_text(f"Deleting #{a['id']}: why?")
            dialog.locator('textarea[name="reason"]').fill("drawn on the wrong cell – redone")
            dialog.locator('button[type="submit"]').click()
            expect(page.page.locator("#status")).to_have_text(f"deleted #{a['id']}", timeout=10_000)
            status, history = rest(page, "GET", f"/annotations/annotations/{a['id']}/history/")
            assert history["versions"][-1]["event"] == "AnnotationDeleted", history
            assert history["versions"][-1]["reason"] == "drawn on the wrong cell – redone", history
            status, _ = rest(page, "PATCH", f"/images/image_sets/{state['set']}/", {"clinical": False})
            assert status == 200
            # The set's audit trail, newest first: clinical mode switched off (the set's own
            # event, old and new value), then the deletion with its reason.
            page.goto(f"/images/imageset/{state['set']}/")
            page.page.click("#audit-link")
            page.page.wait_for_url(f"{BASE}/audit/?set={state['set']}")
            rows = page.page.locator("#timeline tbody tr")
            expect(rows.nth(0)).to_have_attribute("data-event", "ImageSetChanged")
            expect(rows.nth(0).locator('.change[data-field="clinical"]')).to_contain_text("true → false")
            expect(rows.nth(1)).to_have_attribute("data-event", "AnnotationDeleted")
            expect(rows.nth(1).locator(".reason")).to_have_text("drawn on the wrong cell – redone")
            page.page.locator('#audit-filters input[value="AnnotationVerified"]').check()
            page.page.click('#audit-filters button[type="submit"]')
            expect(page.page.locator("#timeline tbody tr").first).to_contain_text("signed reviewed by exact (version 1)")

        def export_from_set_page(page, format):
            """The set page's export form sent with `format`: the zip's files by name."""
            page.goto(f"/images/imageset/{state['set']}/")
            page.page.click("#export summary")
            page.page.select_option('#export-form select[name="format"]', format)
            # The form's navigation becomes a download, which Chromium reports as aborted.
            page.leaving = True
            with page.page.expect_download() as download_info:
                page.page.click('#export-form button[type="submit"]')
            page.leaving = False
            with zipfile.ZipFile(download_info.value.path()) as archive:
                return {name: archive.read(name) for name in archive.namelist()}

        def export_from_the_set_page():
            page = state["admin"]
            files = export_from_set_page(page, "coco")
            manifest = json.loads(files["manifest.json"])
            data = files["annotations.coco.json"]
            assert manifest["format"] == "coco" and manifest["image_set"]["id"] == state["set"], manifest
            assert manifest["files"][0]["sha256"] == hashlib.sha256(data).hexdigest(), manifest
            coco = json.loads(data)
            assert len(coco["annotations"]) == manifest["annotations"] > 0, manifest
            # The import form: a refused line is named, nothing applied; a box that is there
            # already changes nothing.
            import_path = f"/api/v1/images/image_sets/{state['set']}/import/"
            page.expected.add(("POST", import_path, 422))
            page.page.click("#import summary")
            page.page.set_input_files('#import-form input[name="file"]', files=[
                {"name": "labels.txt", "mimeType": "text/plain", "buffer": b"nowhere.png|x|not in image\n"}])
            page.page.click('#import-form button[type="submit"]')
            expect(page.page.locator("#import-report")).to_contain_text("line 1: the set has no image named")
            boxed = next(a for a in coco["annotations"] if len(a["segmentation"]) == 1 and len(a["segmentation"][0]) == 8)
            x, y, w, h = boxed["bbox"]
            name = next(i["file_name"] for i in coco["images"] if i["id"] == boxed["image_id"])
            kind = next(c["name"] for c in coco["categories"] if c["id"] == boxed["category_id"])
            line = f'{name}|{kind}|{{"x1": {x},"y1": {y},"x2": {x + w},"y2": {y + h}}}|\n'
            page.page.set_input_files('#import-form input[name="file"]', files=[
                {"name": "labels.txt", "mimeType": "text/plain", "buffer": line.encode()}])
            page.page.click('#import-form button[type="submit"]')
            expect(page.page.locator("#import-report")).to_contain_text("applied 0, already there 1")

        def a_team_format_is_written_with_a_live_preview():
            page = state["admin"]
            page.goto(f"/images/imageset/{state['set']}/")
            page.page.click("#export summary")
            # The COCO export of the step before is listed, by whom and at which position.
            expect(page.page.locator("#last-exports tbody tr").first).to_contain_text("coco")
            expect(page.page.locator("#last-exports tbody tr").first).to_contain_text("exact")
            page.page.click("#export-form a[href^='/administration/export_formats/']")
            expect(page.page.locator("#format-form h2")).to_have_text("New format")
            page.page.select_option('#format-form select[name="team"]', str(state["team"]))
            page.page.fill('#format-form input[name="name"]', "centres")
            # The preview follows the form as it is typed, on the set the page came from.
            page.page.fill('#format-form textarea[name="annotation_format"]', "%%type@%%cx,%%cy")
            expect(page.page.locator("#preview-text")).to_contain_text("mitosis@")
            expect(page.page.locator("#preview-status")).to_contain_text("annotation")
            page.page.click('#format-form button[type="submit"]')
            expect(page.page.locator("#format-form h2")).to_have_text("centres")
            format_id = page.page.get_attribute("#format-form", "data-format")
            # An export with it from the set page, then a change of the format: the export is
            # listed as made before its format changed.
            manifest = json.loads(export_from_set_page(page, f"exact:{format_id}")["manifest.json"])
            assert manifest["format_name"] == "centres", manifest
            page.goto(f"/administration/export_formats/?format={format_id}&set={state['set']}")
            page.page.fill('#format-form textarea[name="annotation_format"]', "%%type!")
            expect(page.page.locator("#preview-text")).to_contain_text("mitosis!")
            # Saved, the page comes back with the format as stored.
            with page.page.expect_navigation():
                page.page.click('#format-form button[type="submit"]')
            expect(page.page.locator('#format-form textarea[name="annotation_format"]')).to_have_value("%%type!")
            page.goto(f"/images/imageset/{state['set']}/")
            page.page.click("#export summary")
            newest = page.page.locator("#last-exports tbody tr").first
            expect(newest).to_contain_text("centres (v1)")
            expect(newest).to_contain_text("made before its format changed")
            # A template that names nothing known is rendered as EXACT would, not refused; a
            # name taken is refused at its field.
            page.goto("/administration/export_formats/")
            page.expected.add(("POST", "/api/v1/administration/export_formats/", 409))
            page.page.fill('#format-form input[name="name"]', "centres")
            page.page.click('#format-form button[type="submit"]')
            expect(page.page.locator("#format-form [data-error]")).to_contain_text("name")

        def the_sets_changes_between_two_moments():
            page = state["admin"]
            status, said = rest(page, "GET", f"/images/image_sets/{state['set']}/diff/?from=1")
            assert status == 200 and said["total"]["added"] > 0, said
            page.goto(f"/images/imageset/{state['set']}/")
            page.page.click("#export summary")
            page.page.click("#diff-link")
            page.page.fill('#diff-form input[name="from"]', "1")
            page.page.click('#diff-form button[type="submit"]')
            # Before the set existed it had nothing: every live annotation is added since, as
            # the API says.
            expect(page.page.locator("#diff-summary")).to_contain_text(f"{said['total']['added']} added, 0 removed, 0 changed")
            page.page.fill('#diff-form input[name="from"]', "yesterday")
            page.page.click('#diff-form button[type="submit"]')
            expect(page.page.locator("#diff-error")).to_contain_text("from")

        def names_are_escaped_everywhere():
            page = state["admin"]
            hostile = '"><img src=x onerror=alert(1)><script>alert(2)</script>'
            short = '"><img src=x onerror=alert(3)>'
            status, team = rest(page, "POST", "/users/teams/", {"name": short})
            assert status == 201, team
            status, made = rest(page, "POST", "/images/image_sets/", {"name": hostile, "description": hostile, "location": hostile, "team": team["id"]})
            assert status == 201, made
            status, product = rest(page, "POST", "/administration/products/", {"name": hostile, "description": hostile, "team": team["id"], "imagesets": [made["id"]]})
            assert status == 201, product
            status, kind = rest(page, "POST", "/annotations/annotation_types/", {"name": hostile, "product": product["id"], "vector_type": 1})
            assert status == 201, kind
            status, upload = page.page.request.post(BASE + "/api/v1/images/images/", multipart={
                "image_set": str(made["id"]),
                "file_path": {"name": "x.png", "mimeType": "image/png", "buffer": PICTURE.read_bytes()},
            }, headers={"X-CSRFToken": page.page.get_attribute('meta[name="csrf-token"]', "content")}).status, None
            assert status == 201, status
            status, images = rest(page, "GET", f"/images/images/?image_set={made['id']}")
            image = images["results"][0]["id"]
            status, a = rest(page, "POST", "/annotations/annotations/", {"image": image, "annotation_type": kind["id"], "description": hostile,
                                                                        "vector": {"x1": 10, "y1": 10, "x2": 60, "y2": 60}})
            assert status == 201, a
            for path in ["/", f"/users/team/{team['id']}/", f"/images/imageset/{made['id']}/", "/administration/",
                         f"/annotations/{image}/", f"/annotations/{image}/verify/"]:
                page.goto(path)
                page.page.wait_for_load_state("load")
                page.page.wait_for_timeout(500)
                assert page.page.locator("img[src=x]").count() == 0, path
                assert page.page.locator("script:not([src])").count() == 0, path
            # The names are there, as text.
            page.goto(f"/annotations/{image}/")
            expect(page.page.locator("#types")).to_contain_text("onerror=alert(1)")
            page.page.locator("#list button").first.click()
            expect(page.page.locator("#details")).to_contain_text("<script>alert(2)</script>")

        def a_team_is_made_and_a_member_added_on_its_page():
            page = state["admin"]
            page.goto("/")
            page.page.fill('#new-team input[name="name"]', "Histology")
            page.page.click('#new-team button[type="submit"]')
            page.page.wait_for_url(f"{BASE}/users/team/*/")
            team = int(page.page.get_attribute("#team", "data-team"))
            page.page.fill('#add input[name="username"]', "bea")
            page.page.click('#add button[type="submit"]')
            expect(page.page.locator("table.members tbody tr")).to_have_count(2)
            status, members = rest(page, "GET", f"/users/team_membership/?team={team}")
            assert status == 200 and len(members["results"]) == 2, members
            # Someone who is not there is refused with the server's word, next to the form.
            page.page.fill('#add input[name="username"]', "nobody-here")
            page.page.click('#add button[type="submit"]')
            expect(page.page.locator("#error")).to_contain_text("there is no user nobody-here")

        def administration_adds_a_type_and_shows_a_refusal_at_its_field():
            page = state["admin"]
            page.goto("/administration/")
            form = page.page.locator(".product").first.locator("form.new-type")
            page.expected.add(("POST", "/api/v1/annotations/annotation_types/", 409))
            form.locator('input[name="name"]').fill("mitosis")
            form.locator('button[type="submit"]').click()
            expect(form.locator("[data-error]")).to_contain_text("name")
            expect(form.locator('input[name="name"]')).to_have_class(re.compile("invalid"))
            page.expected.clear()
            form.locator('input[name="name"]').fill("stroma")
            form.locator('select[name="vector_type"]').select_option("5")
            form.locator('button[type="submit"]').click()
            expect(page.page.locator('.product').first.locator("form.type-form:not(.new-type)")).to_have_count(4)
            status, types = rest(page, "GET", "/annotations/annotation_types/?name=stroma")
            assert types["count"] == 1 and types["results"][0]["vector_type"] == 5, types

        def settings_make_and_revoke_a_token_and_change_the_password():
            page = state["bea"]
            page.goto("/users/settings/")
            page.page.fill('#new-token input[name="name"]', "my script")
            page.page.click('#new-token button[type="submit"]')
            expect(page.page.locator("#token-shown")).to_contain_text("exact_")
            token = page.page.text_content("#token-shown").split(": ")[-1].strip()
            check = lambda: page.page.request.get(BASE + "/api/v1/auth/session/", headers={"Authorization": f"Bearer {token}"}).status
            assert check() == 200
            page.page.click("#tokens button:text('Revoke')")
            expect(page.page.locator("#tokens tbody tr td").nth(2)).not_to_have_text("–")
            assert check() == 401
            page.page.fill('input[name="current"]', "bea-password")
            page.page.fill('input[name="new"]', "bea-new-password")
            page.page.fill('input[name="repeated"]', "bea-new-password")
            page.page.click("text=Change password")
            expect(page.page.locator(".notice")).to_have_text("Your password is changed.")
            # The session goes on; the old password is gone.
            page.goto("/")
            expect(page.page.locator(".who")).to_have_text("bea")
            old = page.page.request.get(BASE + "/api/v1/auth/session/", headers={"Authorization": "Basic " + base64.b64encode(b"bea:bea-password").decode()})
            assert old.status == 401, old.status

        def frames_of_a_multi_page_image():
            page = state["admin"]
            token = page.page.get_attribute('meta[name="csrf-token"]', "content")
            answer = page.page.request.post(
                BASE + "/api/v1/images/images/",
                headers={"X-CSRFToken": token},
                multipart={
                    "image_set": str(state["set"]),
                    "file_path": {"name": "series.tif", "mimeType": "image/tiff", "buffer": SERIES.read_bytes()},
                },
            )
            assert answer.status == 201, answer.text()
            series = answer.json()["results"][0]
            assert series["frames"] == 3, series
            status, described = rest(
                page, "PATCH", f"/images/images/{series['id']}/", {"frame_descriptions": {"2": "t = 30 s"}}
            )
            assert status == 200, described
            page.goto(f"/annotations/{series['id']}/?frame=2")
            osd = page.page.locator("#viewer")
            expect(page.page.locator("#frame-label")).to_have_text("2 of 3 · t = 30 s")
            expect(osd).to_have_attribute("data-tiles", "loaded", timeout=30_000)
            page.page.keyboard.press("1")
            box = osd_box(page)
            x, y = box["x"] + box["width"] * 0.45, box["y"] + box["height"] * 0.45
            page.page.mouse.move(x, y)
            page.page.mouse.down()
            page.page.mouse.move(x + 60, y + 40, steps=5)
            page.page.mouse.up()
            expect(page.page.locator("#status")).to_contain_text("saved #")
            status, listed = rest(page, "GET", f"/annotations/annotations/?image={series['id']}")
            assert [a["vector"].get("frame") for a in listed["results"]] == [2], listed
            expect(page.page.locator("#count")).to_have_text("(1 loaded)")
            # Shift+E: the next frame, without the box (it is on frame 2), in the address too.
            page.page.keyboard.press("Shift+E")
            expect(page.page.locator("#frame-label")).to_have_text("3 of 3")
            expect(osd).to_have_attribute("data-tiles", "loaded", timeout=30_000)
            expect(page.page.locator("#count")).to_have_text("(0 loaded)")
            assert page.page.url.endswith("?frame=3"), page.page.url
            page.page.keyboard.press("Shift+Q")
            expect(page.page.locator("#frame-label")).to_have_text("2 of 3 · t = 30 s")
            expect(page.page.locator("#count")).to_have_text("(1 loaded)")
            # A frame's tiles are that frame's page: compare the centre of the two frames.
            pixels = {}
            for n in (1, 2):
                tile = page.page.request.get(f"{BASE}/images/image/{series['id']}/1/{n}/tile_files/10/0_0.png")
                assert tile.status == 200, tile.status
                pixels[n] = hashlib.sha256(tile.body()).hexdigest()
            assert pixels[1] != pixels[2]

        def products_are_linked_from_the_set_page():
            page = state["admin"]
            page.goto(f"/images/imageset/{state['set']}/")
            page.page.click("#set-settings summary")
            status, products = rest(page, "GET", "/administration/products/")
            cells = next(p for p in products["results"] if p["name"] == "Cells")
            box = page.page.locator(f"#products input[data-product='{cells['id']}']")
            expect(box).to_be_checked()
            box.uncheck()
            expect(box).to_be_enabled()
            status, product = rest(page, "GET", f"/administration/products/{cells['id']}/")
            assert state["set"] not in product["imagesets"], product
            # Linked again, its types are offered again, the other sets' links untouched.
            box.check()
            expect(box).to_be_enabled()
            status, product = rest(page, "GET", f"/administration/products/{cells['id']}/")
            assert state["set"] in product["imagesets"], product
            assert set(product["imagesets"]) == set(cells["imagesets"]), (product, cells)
            page.goto(f"/images/imageset/{state['set']}/")
            expect(page.page.locator("#filter option", has_text="with mitosis")).to_have_count(1)

        def a_pinned_set_comes_first_and_stays_first():
            page = state["admin"]
            page.goto("/")
            cards = page.page.locator("#sets .card")
            assert cards.count() >= 2, cards.count()
            last = cards.nth(cards.count() - 1)
            name = last.locator("strong").text_content()
            last.locator(".pin").click()
            expect(cards.first.locator("strong")).to_have_text(name)
            expect(cards.first.locator(".pin")).to_have_attribute("aria-pressed", "true")
            # Kept by the server: first again after a reload, and only for this user.
            page.goto("/")
            expect(cards.first.locator("strong")).to_have_text(name)
            cards.first.locator(".pin").click()
            expect(cards.first.locator(".pin")).to_have_attribute("aria-pressed", "false")
            page.goto("/")
            expect(page.page.locator("#sets .pin[aria-pressed=true]")).to_have_count(0)

        def forms_work_with_the_keyboard_alone():
            page = state["admin"]
            pages = ["/", f"/images/imageset/{state['set']}/", f"/users/team/{state['team']}/", "/administration/", "/users/settings/"]
            for path in pages:
                page.goto(path)
                page.page.evaluate("document.querySelectorAll('details').forEach((d) => { d.open = true; })")
                page.page.evaluate("document.activeElement && document.activeElement.blur()")
                reached, unmarked = set(), []
                for _ in range(400):
                    page.page.keyboard.press("Tab")
                    focused = page.page.evaluate(
                        """() => {
                            const e = document.activeElement;
                            if (!e || e === document.body) return null;
                            if (!e.dataset.kbd) e.dataset.kbd = String(Math.random());
                            const style = getComputedStyle(e);
                            const marked = style.outlineStyle !== 'none' || style.boxShadow !== 'none';
                            return [e.dataset.kbd, marked, e.outerHTML.slice(0, 80)];
                        }"""
                    )
                    if focused is None:
                        break
                    if focused[0] in reached:
                        break
                    reached.add(focused[0])
                    if not focused[1]:
                        unmarked.append(focused[2])
                missed = page.page.evaluate(
                    """() => Array.from(document.querySelectorAll('a[href], button, input, select, textarea, summary'))
                        .filter((e) => !e.disabled && e.type !== 'hidden' && e.getClientRects().length > 0 && !e.dataset.kbd)
                        .map((e) => e.outerHTML.slice(0, 80))"""
                )
                assert not missed, f"{path}: not reachable with Tab: {missed}"
                assert not unmarked, f"{path}: focus not shown on {unmarked}"
            # A whole form with keys only: a new team, named and submitted with Enter.
            page.goto("/")
            for _ in range(200):
                page.page.keyboard.press("Tab")
                if page.page.evaluate("document.activeElement.getAttribute('aria-label')") == "new team name":
                    break
            page.page.keyboard.type("Keyboard team")
            page.page.keyboard.press("Enter")
            page.page.wait_for_url(f"{BASE}/users/team/*/")
            expect(page.page.locator("h1")).to_contain_text("Keyboard team")

        def logging_out_ends_the_session():
            page = state["admin"]
            page.goto("/")
            page.page.click("text=Log out")
            page.page.wait_for_url(f"{BASE}/accounts/login/")
            page.goto("/")
            assert "/accounts/login/" in page.page.url

        step("log in as exact", log_in_as_exact)
        step("team, user, set and types", make_team_user_set_and_types)
        step("upload by drag and drop", upload_by_drag_and_drop)
        step("draw a box and a polygon", draw_a_box_and_a_polygon)
        step("move and delete with the keys", move_and_delete_with_the_keys)
        step("a stale edit is not saved", a_stale_edit_is_not_saved)
        step("q and e move between images", q_and_e_move_between_images)
        step("the viewer panel: scale, annotators, flags and adjustments", the_viewer_panel_scale_annotators_flags_and_adjustments)
        step("another user sees them", another_user_sees_them)
        step("the set page counts match the api", the_set_page_counts_match_the_api)
        step("set settings, filters and a new set", set_settings_filters_and_a_new_set)
        step("verify with j and k", verify_with_j_and_k)
        step("clinical mode signs verdicts and asks reasons", clinical_mode_signs_verdicts_and_asks_reasons)
        step("export from the set page", export_from_the_set_page)
        step("a team format is written with a live preview", a_team_format_is_written_with_a_live_preview)
        step("the set's changes between two moments", the_sets_changes_between_two_moments)
        step("names are escaped everywhere", names_are_escaped_everywhere)
        step("a team is made and a member added on its page", a_team_is_made_and_a_member_added_on_its_page)
        step("administration adds a type and shows a refusal at its field", administration_adds_a_type_and_shows_a_refusal_at_its_field)
        step("settings make and revoke a token and change the password", settings_make_and_revoke_a_token_and_change_the_password)
        step("frames of a multi-page image", frames_of_a_multi_page_image)
        step("products are linked from the set page", products_are_linked_from_the_set_page)
        step("a pinned set comes first and stays first", a_pinned_set_comes_first_and_stays_first)
        step("forms work with the keyboard alone", forms_work_with_the_keyboard_alone)
        step("logging out ends the session", logging_out_ends_the_session)
        browser.close()
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
