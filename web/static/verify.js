// The verification page: the image's annotations one at a time, each cropped with its
// surroundings (`get_patch`) and outlined, judged with J (accept) or K (reject); S and D move
// back and forth. Crops five ahead and two behind are fetched while the user looks.
import { api, ApiError } from "./api.js";
import { askSignature, withReason } from "./clinical.js";
import * as g from "./geometry.js";

/** @typedef {import("./viewer.js").Annotation} Annotation */

const root = /** @type {HTMLElement} */ (document.getElementById("verify"));
const facts = JSON.parse(root.dataset.facts || "{}");
const image = facts.image;
const patch = /** @type {HTMLImageElement} */ (document.getElementById("patch"));
const outline = /** @type {HTMLCanvasElement} */ (document.getElementById("outline"));
const caption = /** @type {HTMLElement} */ (document.getElementById("caption"));
const progress = /** @type {HTMLElement} */ (document.getElementById("progress"));
const status = /** @type {HTMLElement} */ (document.getElementById("status"));
const typeSelect = /** @type {HTMLSelectElement} */ (document.getElementById("type"));
const unverifiedOnly = /** @type {HTMLInputElement} */ (document.getElementById("unverified"));

/** @type {Map<number, {id: number, name: string, vector_type: number, color_code: string, enable_concealed: boolean, enable_blurred: boolean}>} */
const types = new Map(facts.types.map((/** @type {any} */ t) => [t.id, t]));

/** @type {Annotation[]} */
let all = [];
/** @type {Annotation[]} */
let queue = [];
let index = 0;
/** The user's verdict per annotation. @type {Map<number, boolean>} */
const mine = new Map();
/** @type {number[]} */
let downsamples = [1];
/** Crops already asked for, kept so the browser holds them. @type {Map<string, HTMLImageElement>} */
const preloaded = new Map();

/** @param {string} text */
function say(text) {
  status.textContent = text;
}

/**
 * Where to cut annotation `a` out of the slide: its box with half its size around it, at the
 * coarsest level that still shows it at least 400 pixels wide.
 * @param {Annotation} a
 */
function cropOf(a) {
  const b = g.bounds(g.nodesOf(a.vector));
  const margin = Math.max(b.maxX - b.minX, b.maxY - b.minY) * 0.5 + 32;
  const x = Math.max(0, Math.floor(b.minX - margin));
  const y = Math.max(0, Math.floor(b.minY - margin));
  const width = Math.min(image.width, Math.ceil(b.maxX + margin)) - x;
  const height = Math.min(image.height, Math.ceil(b.maxY + margin)) - y;
  let level = 0;
  downsamples.forEach((d, i) => {
    if (Math.max(width, height) / d >= 400) level = i;
  });
  const d = downsamples[level];
  // get_patch answers at most 2048 × 2048 pixels.
  const pw = Math.min(2048, Math.max(1, Math.ceil(width / d)));
  const ph = Math.min(2048, Math.max(1, Math.ceil(height / d)));
  return {
    x,
    y,
    scale: 1 / d,
    url: `/api/v1/images/images/${image.id}/get_patch/?x=${x}&y=${y}&level=${level}&width=${pw}&height=${ph}`,
  };
}

/** @param {Annotation} a */
function preload(a) {
  const { url } = cropOf(a);
  if (!preloaded.has(url)) {
    const img = new Image();
    img.src = url;
    preloaded.set(url, img);
  }
}

function show() {
  const a = queue[index];
  const judged = [...mine.keys()].filter((id) => all.some((x) => x.id === id)).length;
  progress.textContent = `${judged} of ${all.length} judged by you`;
  root.dataset.done = String(judged);
  if (!a) {
    root.dataset.annotation = "";
    patch.removeAttribute("src");
    caption.textContent = all.length ? "Nothing left to judge with these filters." : "This image has no annotations to judge.";
    outline.width = outline.width;
    return;
  }
  root.dataset.annotation = String(a.id);
  const crop = cropOf(a);
  patch.onload = () => {
    const ratio = patch.clientWidth / patch.naturalWidth;
    outline.width = patch.clientWidth;
    outline.height = patch.clientHeight;
    const context = /** @type {CanvasRenderingContext2D} */ (outline.getContext("2d"));
    const type = types.get(a.annotation_type);
    /** @type {g.Node[]} */
    const nodes = g.nodesOf(a.vector).map(([x, y]) => [(x - crop.x) * crop.scale * ratio, (y - crop.y) * crop.scale * ratio]);
    context.strokeStyle = type ? type.color_code : "#ff0";
    context.lineWidth = 2;
    context.beginPath();
    g.trace(context, type ? type.vector_type : g.POLYGON, nodes);
    context.stroke();
    root.dataset.shown = String(a.id);
  };
  patch.src = crop.url;
  const type = types.get(a.annotation_type);
  const verdict = mine.has(a.id) ? (mine.get(a.id) ? "you accepted it" : "you rejected it") : "not judged by you";
  caption.textContent = `#${a.id} · ${type ? type.name : a.annotation_type} · by user ${a.user} · ${verdict}` +
    `${a.concealed ? " · concealed" : ""}${a.blurred ? " · blurred" : ""} · ${index + 1} of ${queue.length}`;
  for (let i = index - 2; i <= index + 5; i++) {
    if (i !== index && queue[i]) preload(queue[i]);
  }
}

function filter() {
  const type = Number(typeSelect.value) || null;
  const current = queue[index]?.id;
  queue = all.filter((a) => (type === null || a.annotation_type === type) && (!unverifiedOnly.checked || !mine.has(a.id)));
  const at = queue.findIndex((a) => a.id === current);
  index = at >= 0 ? at : 0;
  show();
}

/** @param {boolean} verified */
async function judge(verified) {
  const a = queue[index];
  if (!a || !facts.may_verify) return;
  /** @type {Record<string, unknown>} */
  const body = { annotation: a.id, verified };
  if (facts.set.clinical) {
    // In clinical mode a verdict is an electronic signature: the password again, and a meaning.
    const signature = await askSignature(`#${a.id}`, verified);
    if (!signature) {
      say(`#${a.id}: not signed`);
      return;
    }
    Object.assign(body, signature);
  }
  try {
    const answer = await api("POST", "/annotations/verifications/", { body });
    mine.set(a.id, verified);
    const signature = answer.json.signature;
    say(signature ? `#${a.id} signed ${signature.meaning} by ${signature.name}` : `#${a.id} ${verified ? "accepted" : "rejected"}`);
    if (unverifiedOnly.checked) {
      queue.splice(index, 1);
      if (index >= queue.length) index = Math.max(0, queue.length - 1);
    } else if (index < queue.length - 1) {
      index += 1;
    }
    show();
  } catch (e) {
    const signing = e instanceof ApiError && e.code === "signature_refused";
    say(`${signing ? "not signed" : "not saved"}: ${e instanceof Error ? e.message : e}`);
  }
}

/** @param {"concealed"|"blurred"} flag */
async function toggle(flag) {
  const a = queue[index];
  const type = a && types.get(a.annotation_type);
  if (!a || !type || !(flag === "concealed" ? type.enable_concealed : type.enable_blurred)) return;
  try {
    const answer = await withReason(`Marking #${a.id} ${flag}`, (reason) =>
      api("PATCH", `/annotations/annotations/${a.id}/`, {
        body: reason ? { [flag]: !a[flag], reason } : { [flag]: !a[flag] },
        headers: { "If-Match": `"${a.version}"` },
      }),
    );
    if (!answer) return;
    Object.assign(a, answer.json);
    show();
  } catch (e) {
    say(`not saved: ${e instanceof Error ? e.message : e}`);
  }
}

document.addEventListener("keydown", (event) => {
  if (/** @type {HTMLElement} */ (event.target).closest("input, select, textarea")) return;
  switch (event.key.toLowerCase()) {
    case "j": judge(true); break;
    case "k": judge(false); break;
    case "s": if (index > 0) { index -= 1; show(); } break;
    case "d": if (index < queue.length - 1) { index += 1; show(); } break;
    case "e": location.assign(`/annotations/${image.id}/`); break;
    case "c": toggle("concealed"); break;
    case "b": toggle("blurred"); break;
    default: return;
  }
  event.preventDefault();
});
document.getElementById("accept")?.addEventListener("click", () => judge(true));
document.getElementById("reject")?.addEventListener("click", () => judge(false));
typeSelect.addEventListener("change", filter);
unverifiedOnly.addEventListener("change", filter);

async function start() {
  const [info, list, verdicts] = await Promise.all([
    api("GET", `/images/images/${image.id}/slide_information/`),
    api("GET", `/annotations/annotations/?image=${image.id}&deleted=false&vector__isnull=false&limit=10000`),
    api("GET", `/annotations/verifications/?user=${facts.user}&limit=10000`),
  ]);
  downsamples = info.json.level_downsamples || [1];
  all = list.json.results.filter((/** @type {Annotation} */ a) => types.has(a.annotation_type));
  for (const v of verdicts.json.results) mine.set(v.annotation, v.verified);
  root.dataset.ready = "true";
  filter();
}

start().catch((e) => say(`loading failed: ${e instanceof Error ? e.message : e}`));
