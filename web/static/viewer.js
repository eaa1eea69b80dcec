// The slide viewer: OpenSeadragon for the pixels, one canvas above it for every shape (never a
// DOM node per shape), annotations loaded for what the viewport shows (`in_bbox`), drawing and
// editing for EXACT's vector types, EXACT's keys. Every change is one REST request; edits send
// the version they started from (`If-Match`), so a change someone else made meanwhile is shown,
// never overwritten.
import { api, ApiError } from "./api.js";
import * as g from "./geometry.js";
import { reasonHeader, withReason } from "./clinical.js";

/* global OpenSeadragon */

/**
 * @typedef {{id: number, name: string, vector_type: number, node_count: number,
 *   color_code: string, default_width: number, default_height: number, closed: boolean,
 *   enable_concealed: boolean, enable_blurred: boolean}} AnnotationType
 * @typedef {{id: number, annotation_type: number, vector: Record<string, number>|null,
 *   user: number, last_editor: number, deleted: boolean, description: string,
 *   unique_identifier: string, version: number, concealed: boolean, blurred: boolean,
 *   meta_data: unknown, time: string, last_edit_time: string}} Annotation
 * @typedef {{image: {id: number, name: string, width: number, height: number,
 *   mpp: number|null, frames: number, frame_descriptions: Record<string, string>}, set: {id: number, name: string, collaboration_type: number},
 *   types: AnnotationType[], previous: number|null, next: number|null, user: number,
 *   may_annotate: boolean, may_edit: boolean, may_delete: boolean}} Facts
 */

const root = /** @type {HTMLElement} */ (document.getElementById("viewer"));
/** @type {Facts} */
let facts = JSON.parse(root.dataset.facts || "{}");
/** The image on screen: Q and E change it without leaving the page. */
let image = facts.image;
const canvas = /** @type {HTMLCanvasElement} */ (document.getElementById("shapes"));
const context = /** @type {CanvasRenderingContext2D} */ (canvas.getContext("2d"));
const status = /** @type {HTMLElement} */ (document.getElementById("status"));

/** @type {Map<number, AnnotationType>} */
const typesById = new Map(facts.types.map((t) => [t.id, t]));
const drawable = facts.types.filter((t) => t.vector_type !== g.GLOBAL);
const globals = facts.types.filter((t) => t.vector_type === g.GLOBAL);

/** Every annotation loaded so far, live ones only, by id. */
/** @type {Map<number, Annotation>} */
const annotations = new Map();

const state = {
  /** @type {AnnotationType|null} */
  tool: null,
  /** Nodes of the shape being drawn. @type {g.Node[]|null} */
  drawing: null,
  /** @type {number|null} */
  selected: null,
  /** A moved or reshaped selection not saved yet. @type {g.Node[]|null} */
  pending: null,
  /** @type {{start: g.Node, handle: number, from: g.Node[]}|null} */
  drag: null,
  /** The pending edit was refused because someone else changed the annotation: both show. */
  conflict: false,
  shown: true,
  /** @type {Set<number>} */
  hiddenTypes: new Set(),
  /** Annotators whose annotations are hidden. @type {Set<number>} */
  hiddenUsers: new Set(),
  filter: "",
};

// ---- frames (multi-page images: a time series, a z-stack) ----

const frameBox = /** @type {HTMLElement} */ (document.getElementById("frames"));
const frameInput = /** @type {HTMLInputElement} */ (document.getElementById("frame"));
const frameLabel = /** @type {HTMLElement} */ (document.getElementById("frame-label"));
/** The frame on screen, 1-based, as EXACT's `?frame=`. */
let frame = clampFrame(Number(new URLSearchParams(location.search).get("frame") || 1));

/** @param {number} n */
function clampFrame(n) {
  return Math.min(Math.max(1, Math.round(n) || 1), image.frames || 1);
}

/** The DeepZoom descriptor of frame `n` of image `id`. @param {number} id @param {number} n */
function tileSource(id, n) {
  return `/images/image/${id}/1/${n}/tile/`;
}

/** An annotation shows on the frame it names; one that names none shows on every frame.
 * @param {Annotation} a */
function onFrame(a) {
  return image.frames <= 1 || !a.vector || a.vector.frame === undefined || Number(a.vector.frame) === frame;
}

/** The frame controls and the address for the frame on screen. */
function frameControls() {
  frameBox.hidden = image.frames <= 1;
  frameInput.max = String(image.frames || 1);
  frameInput.value = String(frame);
  const shows = (image.frame_descriptions || {})[String(frame)];
  frameLabel.textContent = `${frame} of ${image.frames}${shows ? ` · ${shows}` : ""}`;
  root.dataset.frame = String(frame);
  const query = new URLSearchParams(location.search);
  if (frame > 1) query.set("frame", String(frame));
  else query.delete("frame");
  const search = query.toString();
  history.replaceState(history.state, "", `${location.pathname}${search ? `?${search}` : ""}`);
}

/** Shows frame `n` of the image on screen, keeping the viewport. @param {number} n */
function showFrame(n) {
  const next = clampFrame(n);
  if (next === frame) return;
  frame = next;
  Object.assign(state, { drawing: null, selected: null, pending: null, drag: null, conflict: false });
  root.dataset.selected = "";
  root.dataset.tiles = "";
  frameControls();
  const bounds = viewer.viewport.getBounds(true);
  viewer.addOnceHandler("open", () => viewer.viewport.fitBounds(bounds, true));
  viewer.open(tileSource(image.id, frame));
}

const viewer = OpenSeadragon({
  element: /** @type {HTMLElement} */ (document.getElementById("osd")),
  prefixUrl: new URL("vendor/openseadragon/images/", import.meta.url).href,
  tileSources: tileSource(image.id, frame),
  showNavigator: true,
  navigatorPosition: "BOTTOM_RIGHT",
  showRotationControl: false,
  gestureSettingsMouse: { clickToZoom: false, dblClickToZoom: false },
  maxZoomPixelRatio: 4,
  animationTime: 0.6,
  // The 2D canvas draws the same tiles without WebGL, which headless and older machines lack.
  drawer: "canvas",
});

// ---- coordinates ----

/** @param {{x: number, y: number}} position  in the viewer element @returns {g.Node} */
function toImage(position) {
  const p = viewer.viewport.viewerElementToImageCoordinates(new OpenSeadragon.Point(position.x, position.y));
  return [p.x, p.y];
}

/** @param {g.Node} node @returns {g.Node} */
function toScreen(node) {
  const p = viewer.viewport.imageToViewerElementCoordinates(new OpenSeadragon.Point(node[0], node[1]));
  return [p.x, p.y];
}

/** Image pixels per screen pixel: for tolerances that feel the same at every zoom. */
function pixelsPerScreenPixel() {
  const a = toImage({ x: 0, y: 0 });
  const b = toImage({ x: 1, y: 0 });
  return Math.abs(b[0] - a[0]) || 1;
}

// ---- drawing the shapes ----

function resize() {
  const ratio = window.devicePixelRatio || 1;
  const { width, height } = canvas.getBoundingClientRect();
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  context.setTransform(ratio, 0, 0, ratio, 0, 0);
  draw();
}

/** @param {Annotation} a */
function visible(a) {
  return (
    state.shown && onFrame(a) && !state.hiddenTypes.has(a.annotation_type) && !state.hiddenUsers.has(a.user) && matchesFilter(a)
  );
}

/**
 * @param {number} vectorType
 * @param {g.Node[]} nodes
 * @param {string} colour
 * @param {{selected?: boolean, dashed?: boolean}} how
 */
function stroke(vectorType, nodes, colour, how) {
  if (nodes.length === 0) return;
  context.beginPath();
  context.strokeStyle = colour;
  context.lineWidth = how.selected ? 3 : 1.5;
  context.setLineDash(how.dashed ? [6, 4] : []);
  // A shape being drawn is open until it is finished.
  g.trace(context, how.dashed && !how.selected && vectorType === g.POLYGON ? g.MULTI_LINE : vectorType, nodes.map(toScreen));
  context.stroke();
  if (how.selected) {
    context.fillStyle = colour;
    for (const [x, y] of g.handles(vectorType, nodes).map(toScreen)) {
      context.fillRect(x - 4, y - 4, 8, 8);
    }
  }
}

function draw() {
  const { width, height } = canvas.getBoundingClientRect();
  context.clearRect(0, 0, width, height);
  for (const a of annotations.values()) {
    const type = typesById.get(a.annotation_type);
    if (!type || !a.vector || !visible(a)) continue;
    const selected = a.id === state.selected;
    if (selected && state.conflict) {
      stroke(type.vector_type, g.nodesOf(a.vector), type.color_code, {});
    }
    const nodes = selected && state.pending ? state.pending : g.nodesOf(a.vector);
    // A polygon type that is not `closed` is drawn open, as EXACT does.
    const shape = type.vector_type === g.POLYGON && !type.closed ? g.MULTI_LINE : type.vector_type;
    stroke(shape, nodes, type.color_code, {
      selected,
      dashed: selected && state.pending !== null,
    });
  }
  if (state.drawing && state.tool) {
    stroke(state.tool.vector_type, state.drawing, state.tool.color_code, { dashed: true });
  }
}

viewer.addHandler("update-viewport", draw);
// OpenSeadragon's own keys (r rotates, ...) stay off the keys EXACT's users know.
viewer.addHandler("canvas-key", (/** @type {any} */ event) => {
  if (/^[qercvxy1-9]$/i.test(event.originalEvent.key)) event.preventDefaultAction = true;
});
window.addEventListener("resize", resize);

// ---- loading what the viewport shows ----

let loading = /** @type {AbortController|null} */ (null);

async function loadViewport() {
  const bounds = viewer.viewport.viewportToImageRectangle(viewer.viewport.getBounds(true));
  const pad = Math.max(bounds.width, bounds.height) * 0.25;
  const box = [
    Math.max(0, bounds.x - pad),
    Math.max(0, bounds.y - pad),
    Math.min(image.width, bounds.x + bounds.width + pad),
    Math.min(image.height, bounds.y + bounds.height + pad),
  ].map((v) => Math.round(v));
  loading?.abort();
  loading = new AbortController();
  const mine = facts.set.collaboration_type === 1 ? `&user=${facts.user}` : "";
  try {
    const answer = await api(
      "GET",
      `/annotations/annotations/?image=${image.id}&deleted=false&in_bbox=${box.join(",")}&limit=5000${mine}`,
      { signal: loading.signal },
    );
    for (const a of answer.json.results) {
      if (a.id !== state.selected || state.pending === null) annotations.set(a.id, a);
    }
    refreshPanel();
    draw();
  } catch (e) {
    if (!(e instanceof DOMException && e.name === "AbortError")) say(`loading annotations failed: ${message(e)}`);
  }
}

async function loadGlobals() {
  if (globals.length === 0) return;
  const ids = globals.map((t) => t.id).join(",");
  const answer = await api(
    "GET",
    `/annotations/annotations/?image=${image.id}&deleted=false&annotation_type__in=${ids}&limit=100`,
  );
  for (const a of answer.json.results) annotations.set(a.id, a);
  refreshGlobals();
}

viewer.addHandler("open", () => {
  resize();
  loadViewport();
  loadGlobals().catch((e) => say(message(e)));
  root.dataset.ready = "true";
});
viewer.addHandler("animation-finish", loadViewport);
viewer.addHandler("open-failed", (/** @type {any} */ e) => say(`the slide cannot be shown: ${e.message}`));

// ---- the side panel ----

const typeList = /** @type {HTMLElement} */ (document.getElementById("types"));
const globalBox = /** @type {HTMLElement} */ (document.getElementById("globals"));
const list = /** @type {HTMLElement} */ (document.getElementById("list"));
const count = /** @type {HTMLElement} */ (document.getElementById("count"));
const filterInput = /** @type {HTMLInputElement} */ (document.getElementById("filter"));
const selectedBox = /** @type {HTMLElement} */ (document.getElementById("selected"));
const details = /** @type {HTMLElement} */ (document.getElementById("details"));

const concealedBox = /** @type {HTMLInputElement} */ (document.getElementById("concealed"));
const blurredBox = /** @type {HTMLInputElement} */ (document.getElementById("blurred"));
const annotatorBox = /** @type {HTMLElement} */ (document.getElementById("annotators"));
/** Usernames by id, asked for once each. @type {Map<number, string>} */
const usernames = new Map();

/** The annotators of what is loaded, each with a box to show or hide their annotations. */
function refreshAnnotators() {
  const ids = [...new Set([...annotations.values()].map((a) => a.user))].sort((a, b) => a - b);
  const unknown = ids.filter((id) => !usernames.has(id));
  if (unknown.length) {
    for (const id of unknown) usernames.set(id, `user ${id}`);
    api("GET", `/users/users/?id__in=${unknown.join(",")}&limit=${unknown.length}`)
      .then((answer) => {
        for (const u of answer.json.results) usernames.set(u.id, u.username);
        refreshAnnotators();
      })
      .catch(() => undefined);
  }
  annotatorBox.replaceChildren(
    ...ids.map((id) => {
      const label = document.createElement("label");
      const box = document.createElement("input");
      box.type = "checkbox";
      box.checked = !state.hiddenUsers.has(id);
      box.dataset.user = String(id);
      box.addEventListener("change", () => {
        if (box.checked) state.hiddenUsers.delete(id);
        else state.hiddenUsers.add(id);
        draw();
      });
      label.append(box, ` ${usernames.get(id)}${id === facts.user ? " (you)" : ""}`);
      return label;
    }),
  );
}

const VECTOR_NAMES = ["", "box", "point", "line", "multi-line", "polygon", "fixed-size box", "global"];

function buildTypes() {
  drawable.forEach((type, index) => {
    const item = document.createElement("li");
    item.dataset.type = String(type.id);
    const pick = document.createElement("button");
    pick.type = "button";
    pick.className = "type";
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.backgroundColor = type.color_code;
    const label = document.createElement("span");
    label.textContent = `${index < 9 ? `${index + 1} ` : ""}${type.name} (${VECTOR_NAMES[type.vector_type]})`;
    const tally = document.createElement("span");
    tally.className = "tally muted";
    pick.append(swatch, label, tally);
    pick.addEventListener("click", () => chooseTool(type));
    const eye = document.createElement("input");
    eye.type = "checkbox";
    eye.checked = true;
    eye.title = "show this type";
    eye.setAttribute("aria-label", `show ${type.name}`);
    eye.addEventListener("change", () => {
      if (eye.checked) state.hiddenTypes.delete(type.id);
      else state.hiddenTypes.add(type.id);
      draw();
    });
    item.append(pick, eye);
    typeList.append(item);
  });
  globals.forEach((type, index) => {
    const label = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.dataset.type = String(type.id);
    box.disabled = !facts.may_annotate;
    box.addEventListener("change", () => toggleGlobal(type, box.checked));
    label.append(box, ` ${index < 9 ? `⇧${index + 1} ` : ""}${type.name}`);
    globalBox.append(label);
  });
}

/** @param {AnnotationType|null} type */
function chooseTool(type) {
  state.tool = type && state.tool?.id === type.id ? null : type;
  state.drawing = null;
  for (const item of typeList.querySelectorAll("li")) {
    item.classList.toggle("active", state.tool !== null && item.getAttribute("data-type") === String(state.tool.id));
  }
  root.dataset.tool = state.tool ? String(state.tool.id) : "";
  draw();
}

/** Ids of this image's annotations that someone has judged, asked for when the search needs them. */
/** @type {Set<number>|null} */
let judged = null;

async function loadJudged() {
  const answer = await api(
    "GET",
    `/annotations/annotations/?image=${image.id}&deleted=false&verified_by__range=1,${2 ** 52}&fields=id&limit=10000`,
  );
  judged = new Set(answer.json.results.map((/** @type {{id: number}} */ a) => a.id));
  refreshPanel();
  draw();
}

/** EXACT's search: `@id:`, `@label:`, `@first editor:`, `@last editor:`, `@verified:`, or words. */
/** @param {Annotation} a */
function matchesFilter(a) {
  const text = state.filter.trim().toLowerCase();
  if (!text) return true;
  const tagged = text.match(/^@(id|label|first editor|last editor|verified):\s*(.*)$/);
  const type = typesById.get(a.annotation_type);
  if (tagged) {
    const [, key, value] = tagged;
    if (key === "verified") {
      if (judged === null) return true;
      return judged.has(a.id) === !["false", "no", "0"].includes(value);
    }
    if (key === "id") return String(a.id) === value;
    if (key === "label") return (type?.name || "").toLowerCase().includes(value);
    if (key === "first editor") return String(a.user) === value;
    return String(a.last_editor) === value;
  }
  return `${a.id} ${type?.name || ""} ${a.description}`.toLowerCase().includes(text);
}

function refreshPanel() {
  const shown = [...annotations.values()].filter((a) => a.vector && onFrame(a) && matchesFilter(a));
  count.textContent = `(${shown.length} loaded)`;
  for (const item of typeList.querySelectorAll("li")) {
    const id = Number(item.getAttribute("data-type"));
    const tally = item.querySelector(".tally");
    if (tally) tally.textContent = String(shown.filter((a) => a.annotation_type === id).length);
  }
  list.replaceChildren(
    ...shown.slice(0, 200).map((a) => {
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = a.id === state.selected ? "link current" : "link";
      button.textContent = `#${a.id} ${typesById.get(a.annotation_type)?.name || ""}`;
      button.addEventListener("click", () => {
        select(a.id);
        const b = g.bounds(g.nodesOf(a.vector));
        viewer.viewport.fitBoundsWithConstraints(
          viewer.viewport.imageToViewportRectangle(b.minX - 50, b.minY - 50, b.maxX - b.minX + 100, b.maxY - b.minY + 100),
        );
      });
      item.append(button);
      return item;
    }),
  );
  refreshAnnotators();
  const a = selectedAnnotation();
  selectedBox.hidden = !a;
  if (a) {
    const type = typesById.get(a.annotation_type);
    concealedBox.checked = a.concealed;
    blurredBox.checked = a.blurred;
    concealedBox.disabled = !facts.may_edit || !type?.enable_concealed;
    blurredBox.disabled = !facts.may_edit || !type?.enable_blurred;
    const rows = [
      ["id", `#${a.id}`],
      ["type", typesById.get(a.annotation_type)?.name || String(a.annotation_type)],
      ["description", a.description || "–"],
      ["meta data", a.meta_data === null ? "–" : JSON.stringify(a.meta_data)],
      ["first editor", `user ${a.user}, ${a.time}`],
      ["last editor", `user ${a.last_editor}, ${a.last_edit_time}`],
      ["version", String(a.version)],
    ];
    details.replaceChildren(
      ...rows.flatMap(([k, v]) => {
        const dt = document.createElement("dt");
        dt.textContent = k;
        const dd = document.createElement("dd");
        dd.textContent = v;
        return [dt, dd];
      }),
    );
  }
}

function refreshGlobals() {
  for (const box of globalBox.querySelectorAll("input")) {
    const id = Number(box.getAttribute("data-type"));
    /** @type {HTMLInputElement} */ (box).checked = [...annotations.values()].some(
      (a) => a.annotation_type === id && !a.deleted,
    );
  }
}

filterInput.addEventListener("input", () => {
  state.filter = filterInput.value;
  if (state.filter.trim().toLowerCase().startsWith("@verified:")) {
    loadJudged().catch((e) => say(message(e)));
  }
  refreshPanel();
  draw();
});

// ---- writing ----

/** @param {string} text */
function say(text) {
  status.textContent = text;
  status.hidden = !text;
}

/** @param {unknown} e */
function message(e) {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Saves a new shape of the current tool.
 * @param {AnnotationType} type
 * @param {g.Node[]} nodes
 */
async function create(type, nodes) {
  /** @type {Record<string, number>} */
  const vector = g.vectorOf(g.clamp(nodes, image.width, image.height));
  if (image.frames > 1) vector.frame = frame;
  try {
    const answer = await api("POST", "/annotations/annotations/", {
      body: {
        image: image.id,
        annotation_type: type.id,
        vector,
        unique_identifier: crypto.randomUUID(),
      },
    });
    annotations.set(answer.json.id, answer.json);
    say(`saved #${answer.json.id}`);
    refreshPanel();
    draw();
  } catch (e) {
    say(`not saved: ${message(e)}`);
  }
}

/** @param {AnnotationType} type @param {boolean} on */
async function toggleGlobal(type, on) {
  try {
    if (on) {
      const answer = await api("POST", "/annotations/annotations/", {
        body: { image: image.id, annotation_type: type.id, vector: null, unique_identifier: crypto.randomUUID() },
      });
      annotations.set(answer.json.id, answer.json);
    } else {
      for (const a of [...annotations.values()].filter((a) => a.annotation_type === type.id)) {
        const done = await withReason(`Removing ${type.name}`, (reason) =>
          api("DELETE", `/annotations/annotations/${a.id}/`, {
            headers: { "If-Match": `"${a.version}"`, ...(reason ? reasonHeader(reason) : {}) },
          }),
        );
        if (!done) {
          say(`${type.name}: not removed, no reason given`);
          refreshGlobals();
          return;
        }
        annotations.delete(a.id);
      }
    }
    say(`${type.name}: ${on ? "set" : "removed"}`);
  } catch (e) {
    say(`${type.name}: ${message(e)}`);
  }
  refreshGlobals();
}

/**
 * Someone else changed annotation `id`: show theirs, and say so.
 * @param {number} id
 */
async function reloadAfterConflict(id) {
  try {
    const theirs = await api("GET", `/annotations/annotations/${id}/`);
    annotations.set(id, theirs.json);
    const who = `#${id} was changed by user ${theirs.json.last_editor} meanwhile (now version ${theirs.json.version})`;
    if (state.pending && state.selected === id) {
      // Both are shown: theirs as it is stored, the unsaved edit dashed beside it.
      state.conflict = true;
      say(`${who}: theirs is solid, yours dashed and not saved; Enter saves yours over theirs, Esc keeps theirs`);
    } else {
      say(`${who}; their version is shown`);
    }
  } catch (e) {
    annotations.delete(id);
    state.pending = null;
    say(`#${id} is gone: ${message(e)}`);
  }
  refreshPanel();
  draw();
}

/** The selected annotation, if one is selected and loaded. */
function selectedAnnotation() {
  return state.selected === null ? undefined : annotations.get(state.selected);
}

/**
 * One change of the selected annotation, sent with the version it was made from. A 412 shows
 * the other version (`reloadAfterConflict`); any other refusal is said, starting with
 * `refused`. Returns the annotation and the server's answer, or null when refused.
 * @param {string} method
 * @param {Record<string, unknown>|undefined} body
 * @param {string} refused
 */
async function changeSelected(method, body, refused) {
  const a = selectedAnnotation();
  if (!a) return null;
  try {
    // In clinical mode the server may ask why (the annotation has a verdict): then the user
    // is asked, and the change goes again with the reason, in the body or, for a delete, a header.
    const what = `${method === "DELETE" ? "Deleting" : "Changing"} #${a.id}`;
    const answer = await withReason(what, (reason) =>
      api(method, `/annotations/annotations/${a.id}/`, {
        body: reason && body ? { ...body, reason } : body,
        headers: { "If-Match": `"${a.version}"`, ...(reason && !body ? reasonHeader(reason) : {}) },
      }),
    );
    if (!answer) {
      say(`${refused}: no reason given`);
      return null;
    }
    return { a, answer };
  } catch (e) {
    if (e instanceof ApiError && e.status === 412) {
      await reloadAfterConflict(a.id);
    } else {
      say(`${refused}: ${message(e)}`);
    }
    return null;
  }
}

async function saveEdit() {
  if (!state.pending) return;
  const vector = g.vectorOf(g.clamp(state.pending, image.width, image.height));
  // A reshaped annotation stays on its frame.
  const kept = selectedAnnotation()?.vector?.frame;
  if (kept !== undefined) vector.frame = kept;
  const done = await changeSelected("PATCH", { vector }, "not saved");
  if (done) {
    annotations.set(done.a.id, done.answer.json);
    Object.assign(state, { pending: null, conflict: false });
    say(`saved #${done.a.id}`);
  }
  refreshPanel();
  draw();
}

async function deleteSelected() {
  const done = await changeSelected("DELETE", undefined, "not deleted");
  if (done) {
    annotations.delete(done.a.id);
    Object.assign(state, { selected: null, pending: null, conflict: false });
    say(`deleted #${done.a.id}`);
  }
  refreshPanel();
  draw();
}

// ---- the mouse ----

/** @param {number|null} id */
function select(id) {
  state.selected = id;
  state.pending = null;
  state.conflict = false;
  root.dataset.selected = id === null ? "" : String(id);
  refreshPanel();
  draw();
}

/** The topmost visible annotation at `p`, the smallest first. @param {g.Node} p */
function annotationAt(p) {
  const tolerance = 6 * pixelsPerScreenPixel();
  let best = null;
  let bestArea = Infinity;
  for (const a of annotations.values()) {
    const type = typesById.get(a.annotation_type);
    if (!type || !a.vector || !visible(a)) continue;
    const nodes = g.nodesOf(a.vector);
    if (!g.hits(type.vector_type, nodes, p, tolerance)) continue;
    const b = g.bounds(nodes);
    const area = (b.maxX - b.minX) * (b.maxY - b.minY);
    if (area < bestArea) {
      best = a;
      bestArea = area;
    }
  }
  return best;
}

/**
 * Shift+click adds a node to the selected line, multi-line or polygon on its nearest edge;
 * Alt+click removes the node under the pointer, while enough are left. The change waits for
 * Enter or V, as a move does. Returns whether the click was such an edit.
 * @param {g.Node} p
 * @param {MouseEvent} original
 */
function editNodes(p, original) {
  const a = selectedAnnotation();
  const type = a && typesById.get(a.annotation_type);
  if (!a || !type || !facts.may_edit || !(original.shiftKey || original.altKey)) return false;
  if (![g.MULTI_LINE, g.POLYGON].includes(type.vector_type)) return false;
  const nodes = state.pending || g.nodesOf(a.vector);
  const least = type.vector_type === g.POLYGON ? 3 : 2;
  if (original.shiftKey) {
    state.pending = g.insertNode(nodes, p, type.vector_type === g.POLYGON);
  } else {
    const index = g.nodeAt(nodes, p, 8 * pixelsPerScreenPixel());
    if (index < 0 || nodes.length <= least) return true;
    state.pending = nodes.filter((_, i) => i !== index);
  }
  say("nodes changed: Enter or V saves, Esc goes back");
  draw();
  return true;
}

/** Whether the nodes being drawn make a shape of the tool's kind. */
function finishable() {
  const type = state.tool;
  const nodes = state.drawing;
  if (!type || !nodes) return false;
  if (type.vector_type === g.POLYGON) return nodes.length >= 3;
  return nodes.length >= 2;
}

async function finishDrawing() {
  const type = state.tool;
  const nodes = state.drawing;
  state.drawing = null;
  if (type && nodes && (type.vector_type === g.POLYGON ? nodes.length >= 3 : nodes.length >= 2)) {
    await create(type, nodes);
  }
  draw();
}

viewer.addHandler("canvas-press", (/** @type {any} */ event) => {
  const p = toImage(event.position);
  const tolerance = 6 * pixelsPerScreenPixel();
  const a = selectedAnnotation();
  if (a && facts.may_edit) {
    const type = typesById.get(a.annotation_type);
    const nodes = state.pending || g.nodesOf(a.vector);
    if (type) {
      const handle = g.nodeAt(g.handles(type.vector_type, nodes), p, tolerance * 1.5);
      if (handle >= 0 || g.hits(type.vector_type, nodes, p, tolerance)) {
        state.drag = { start: p, handle, from: nodes };
        return;
      }
    }
  }
  if (state.tool?.vector_type === g.BOX && facts.may_annotate) {
    state.drawing = [p, p];
  }
});

viewer.addHandler("canvas-drag", (/** @type {any} */ event) => {
  const p = toImage(event.position);
  if (state.drag) {
    event.preventDefaultAction = true;
    const a = selectedAnnotation();
    const type = a && typesById.get(a.annotation_type);
    if (!type) return;
    const { start, handle, from } = state.drag;
    state.pending =
      handle >= 0
        ? g.moveHandle(type.vector_type, from, handle, p)
        : g.translate(from, p[0] - start[0], p[1] - start[1]);
    draw();
    return;
  }
  if (state.drawing && state.tool?.vector_type === g.BOX) {
    event.preventDefaultAction = true;
    state.drawing = [state.drawing[0], p];
    draw();
  }
});

viewer.addHandler("canvas-release", () => {
  if (state.drag) {
    state.drag = null;
    if (state.pending) say("moved: Enter or V saves, Esc goes back");
    return;
  }
  if (state.drawing && state.tool?.vector_type === g.BOX) {
    const [a, b] = state.drawing;
    const minimum = 3 * pixelsPerScreenPixel();
    if (Math.abs(a[0] - b[0]) > minimum && Math.abs(a[1] - b[1]) > minimum) {
      state.drawing = g.box(a, b);
      finishDrawing();
    } else {
      state.drawing = null;
    }
  }
});

viewer.addHandler("canvas-click", (/** @type {any} */ event) => {
  if (!event.quick) return;
  event.preventDefaultAction = true;
  const p = toImage(event.position);
  if (editNodes(p, event.originalEvent)) return;
  const type = state.tool;
  if (type && facts.may_annotate && type.vector_type !== g.BOX) {
    switch (type.vector_type) {
      case g.POINT:
        create(type, g.boxAround(p, type.default_width || 50, type.default_height || 50));
        return;
      case g.FIXED_BOX:
        create(type, g.boxAround(p, type.default_width || 50, type.default_height || 50));
        return;
      case g.LINE:
        state.drawing = [...(state.drawing || []), p];
        if (state.drawing.length === 2) finishDrawing();
        else draw();
        return;
      default:
        state.drawing = [...(state.drawing || []), p];
        if (type.node_count > 0 && state.drawing.length === type.node_count) finishDrawing();
        else draw();
        return;
    }
  }
  if (state.pending) return;
  const hit = annotationAt(p);
  select(hit ? hit.id : null);
});

viewer.addHandler("canvas-double-click", (/** @type {any} */ event) => {
  event.preventDefaultAction = true;
  // The double click's own clicks added the last node twice.
  if (state.drawing && state.drawing.length > 1) {
    const [a, b] = state.drawing.slice(-2);
    if (Math.hypot(a[0] - b[0], a[1] - b[1]) < 3 * pixelsPerScreenPixel()) state.drawing.pop();
  }
  if (finishable()) finishDrawing();
});

// ---- the keys (EXACT's) ----

document.addEventListener("keydown", (event) => {
  const target = /** @type {HTMLElement} */ (event.target);
  if (target.closest("input, textarea, select")) return;
  const key = event.key;
  const digit = /^Digit([1-9])$/.exec(event.code);
  if (digit) {
    const index = Number(digit[1]) - 1;
    if (event.shiftKey) {
      const type = globals[index];
      const box = type && /** @type {HTMLInputElement|null} */ (globalBox.querySelector(`input[data-type="${type.id}"]`));
      if (box && !box.disabled) {
        box.checked = !box.checked;
        toggleGlobal(type, box.checked);
      }
    } else if (drawable[index]) {
      chooseTool(drawable[index]);
    }
    event.preventDefault();
    return;
  }
  switch (key) {
    case "Escape":
      if (state.drawing) state.drawing = null;
      else if (state.pending) Object.assign(state, { pending: null, conflict: false });
      else chooseTool(null);
      draw();
      break;
    case "Enter":
    case "v":
    case "V":
      if (state.drawing) {
        if (finishable()) finishDrawing();
      } else {
        saveEdit();
      }
      break;
    case "Delete":
    case "Backspace":
    case "x":
    case "X":
      if (facts.may_delete) deleteSelected();
      break;
    case "c":
    case "C": {
      // The next annotation on screen, in id order.
      const ids = [...annotations.values()].filter((a) => a.vector && visible(a)).map((a) => a.id).sort((a, b) => a - b);
      if (ids.length) select(ids.find((id) => state.selected === null || id > state.selected) ?? ids[0]);
      break;
    }
    case "r":
    case "R":
      select(null);
      break;
    case "y":
    case "Y":
      state.shown = !state.shown;
      draw();
      break;
    case "q":
    case "Q":
      // Shift moves between frames, as in EXACT.
      if (event.shiftKey && image.frames > 1) showFrame(frame - 1);
      else if (facts.previous) goTo(facts.previous);
      break;
    case "e":
    case "E":
      if (event.shiftKey && image.frames > 1) showFrame(frame + 1);
      else if (facts.next) goTo(facts.next);
      break;
    default:
      return;
  }
  event.preventDefault();
});

// ---- the access log and preloading ----

/**
 * EXACT's access log: the viewer reports opening (1) and closing (2) an image; the second is
 * sent as the page goes away, so it must outlive it (`keepalive`).
 * @param {number} action
 */
function logAccess(action) {
  return api("POST", "/annotations/log_image_actions/", { body: { image: image.id, action }, keepalive: true }).catch(
    () => undefined,
  );
}

/** The facts of neighbouring images, fetched ahead: Q and E then need no new page. */
/** @type {Map<number, Facts>} */
const ahead = new Map();

/**
 * The next and previous images' facts and descriptors, so Q and E show at once (`?preload=0`
 * turns it off, for measuring what it saves).
 */
function preload() {
  if (new URLSearchParams(location.search).get("preload") === "0") return;
  for (const id of [facts.next, facts.previous]) {
    if (!id || ahead.has(id)) continue;
    preloadTiles(id).catch(() => undefined);
    fetch(`/annotations/${id}/`, { credentials: "same-origin" })
      .then((response) => (response.ok ? response.text() : Promise.reject(new Error(String(response.status)))))
      .then((html) => {
        const page = new DOMParser().parseFromString(html, "text/html");
        const data = /** @type {HTMLElement|null} */ (page.getElementById("viewer"))?.dataset.facts;
        if (data) {
          ahead.set(id, JSON.parse(data));
          root.dataset.ahead = [...ahead.keys()].join(",");
        }
      })
      .catch(() => undefined);
  }
}

/**
 * Fetches image `id`'s descriptor and the tiles OpenSeadragon asks first when it opens it: every
 * level up to the one that fills this viewer. The browser keeps both (the server lets it), so
 * Q and E draw the next image without waiting for the network.
 * @param {number} id
 */
async function preloadTiles(id) {
  const response = await fetch(tileSource(id, 1), { credentials: "same-origin" });
  if (!response.ok) return;
  const xml = new DOMParser().parseFromString(await response.text(), "application/xml");
  const root_ = xml.documentElement;
  const size = xml.getElementsByTagName("Size")[0];
  const tile = Number(root_.getAttribute("TileSize"));
  const format = root_.getAttribute("Format") || "jpeg";
  const [width, height] = [Number(size?.getAttribute("Width")), Number(size?.getAttribute("Height"))];
  if (!(tile > 0 && width > 0 && height > 0)) return;
  const top = Math.ceil(Math.log2(Math.max(width, height)));
  const box = viewer.element.getBoundingClientRect();
  const fit = Math.min(box.width / width, box.height / height) * (window.devicePixelRatio || 1);
  const last = Math.min(top, Math.max(0, top + Math.ceil(Math.log2(Math.max(fit, 1e-9)))));
  const urls = [];
  for (let level = 0; level <= last; level++) {
    const scale = 2 ** (level - top);
    const [columns, rows] = [Math.ceil((width * scale) / tile), Math.ceil((height * scale) / tile)];
    for (let row = 0; row < rows; row++) {
      for (let column = 0; column < columns; column++) {
        urls.push(`/images/image/${id}/1/1/tile_files/${level}/${column}_${row}.${format}`);
      }
    }
  }
  // A few at a time, so the image on screen keeps the connection first.
  for (let i = 0; i < urls.length; i += 4) {
    await Promise.all(urls.slice(i, i + 4).map((url) => fetch(url, { credentials: "same-origin" }).catch(() => undefined)));
  }
  root.dataset.aheadTiles = `${root.dataset.aheadTiles ? `${root.dataset.aheadTiles},` : ""}${id}:${urls.length}`;
}

/**
 * Shows image `id`: in this page when its facts were fetched ahead and it is of the same set
 * (same types), else by loading its page.
 * @param {number} id
 */
function goTo(id) {
  const next = ahead.get(id);
  if (!next || next.set.id !== facts.set.id) {
    location.assign(`/annotations/${id}/${location.search}`);
    return;
  }
  logAccess(2);
  root.dataset.tiles = "";
  root.dataset.ready = "";
  annotations.clear();
  judged = null;
  Object.assign(state, { drawing: null, selected: null, pending: null, drag: null, conflict: false });
  root.dataset.selected = "";
  facts = next;
  image = next.image;
  frame = 1;
  const query = new URLSearchParams(location.search);
  query.delete("frame");
  const search = query.toString();
  history.pushState({ image: id }, "", `/annotations/${id}/${search ? `?${search}` : ""}`);
  frameControls();
  document.title = `${image.name} · Exact`;
  const crumb = document.getElementById("crumb-image");
  if (crumb) crumb.textContent = image.name;
  neighbourLinks();
  say("");
  refreshPanel();
  viewer.open(tileSource(id, 1));
  logAccess(1);
}

/** The previous and next links of the panel, for the image on screen. */
function neighbourLinks() {
  const nav = /** @type {HTMLElement} */ (document.querySelector(".neighbours"));
  const links = [];
  for (const [id, text, key] of [[facts.previous, "← previous (Q)", "previous"], [facts.next, "next (E) →", "next"]]) {
    if (!id) continue;
    const link = document.createElement("a");
    link.id = String(key);
    link.href = `/annotations/${id}/`;
    link.textContent = String(text);
    link.addEventListener("click", (event) => {
      event.preventDefault();
      goTo(Number(id));
    });
    links.push(link);
  }
  nav.replaceChildren(...links);
}

// Back and forward go through the pages themselves.
window.addEventListener("popstate", () => location.reload());

/** @param {"concealed"|"blurred"} flag @param {boolean} on */
async function setFlag(flag, on) {
  const done = await changeSelected("PATCH", { [flag]: on }, "not saved");
  if (done) {
    annotations.set(done.a.id, done.answer.json);
    say(`#${done.a.id} ${on ? "" : "not "}${flag}`);
  }
  refreshPanel();
}
concealedBox.addEventListener("change", () => setFlag("concealed", concealedBox.checked));
blurredBox.addEventListener("change", () => setFlag("blurred", blurredBox.checked));

// Image adjustments: a CSS filter on the slide's canvas (the pixels on the server are untouched).
const adjust = {
  brightness: /** @type {HTMLInputElement} */ (document.getElementById("brightness")),
  contrast: /** @type {HTMLInputElement} */ (document.getElementById("contrast")),
  grey: /** @type {HTMLInputElement} */ (document.getElementById("grey")),
  invert: /** @type {HTMLInputElement} */ (document.getElementById("invert")),
};
function applyAdjustments() {
  const filter =
    `brightness(${adjust.brightness.value}%) contrast(${adjust.contrast.value}%)` +
    `${adjust.grey.checked ? " grayscale(1)" : ""}${adjust.invert.checked ? " invert(1)" : ""}`;
  const drawn = /** @type {HTMLElement|null} */ (document.querySelector("#osd .openseadragon-canvas"));
  if (drawn) drawn.style.filter = filter;
}
for (const input of Object.values(adjust)) input.addEventListener("input", applyAdjustments);

// A scale bar from the slide's microns per pixel: a round length about 120 screen pixels long.
const scale = /** @type {HTMLElement} */ (document.getElementById("scale"));
function updateScale() {
  if (!image.mpp) return;
  const micronsPerScreenPixel = image.mpp * pixelsPerScreenPixel();
  const target = micronsPerScreenPixel * 120;
  const power = 10 ** Math.floor(Math.log10(target));
  const length = [1, 2, 5, 10].map((m) => m * power).filter((l) => l <= target).pop() || power;
  const bar = /** @type {HTMLElement} */ (scale.querySelector(".scale-bar"));
  bar.style.width = `${Math.round(length / micronsPerScreenPixel)}px`;
  /** @type {HTMLElement} */ (scale.querySelector(".scale-label")).textContent =
    length >= 1000 ? `${length / 1000} mm` : `${length} µm`;
  scale.hidden = false;
}
viewer.addHandler("update-viewport", updateScale);

buildTypes();
neighbourLinks();
logAccess(1);
viewer.addHandler("tile-loaded", () => {
  if (!root.dataset.tiles) {
    root.dataset.tiles = "loaded";
    preload();
  }
});
window.addEventListener("pagehide", () => logAccess(2));

frameInput.addEventListener("input", () => showFrame(Number(frameInput.value)));
frameControls();
