// The export format editor's live preview: every change to the form (and to the preview's set
// or moment) renders the format as it is being written on a real set, through the API's
// preview route; nothing is saved until the form is. A newer change cancels the preview on
// its way, so the text shown is always that of the form as it stands.
import { api } from "./api.js";
import { fieldsOf } from "./forms.js";

const form = /** @type {HTMLFormElement|null} */ (document.getElementById("format-form"));
const setChoice = /** @type {HTMLSelectElement|null} */ (document.getElementById("preview-set"));
const asOf = /** @type {HTMLInputElement|null} */ (document.getElementById("preview-as-of"));
const status = document.getElementById("preview-status");
const text = document.getElementById("preview-text");
const teamChoice = /** @type {HTMLSelectElement|null} */ (form?.querySelector('select[name="team"]') || null);
const typeChoice = /** @type {HTMLSelectElement|null} */ (form?.querySelector('select[name="annotations_types"]') || null);

/** @type {AbortController|null} */
let running = null;
/** @type {number|undefined} */
let timer;

async function preview() {
  if (!form || !setChoice || !status || !text) return;
  if (!setChoice.value) {
    status.textContent = "No set to preview on.";
    return;
  }
  running?.abort();
  const mine = new AbortController();
  running = mine;
  const body = fieldsOf(form);
  delete body.team;
  body.image_set = Number(setChoice.value);
  body.as_of = asOf?.value.trim() || undefined;
  status.textContent = "Rendering…";
  try {
    const { json } = await api("POST", "/administration/export_formats/preview/", { body, signal: mine.signal });
    const cut = json.truncated ? `, first ${json.text.length.toLocaleString()} of ${json.characters.toLocaleString()} characters` : "";
    status.textContent = `${json.file_name}: ${json.annotations} annotation${json.annotations === 1 ? "" : "s"}, ` +
      `${json.bytes.toLocaleString()} bytes, as of log position ${json.position}${cut}`;
    status.classList.remove("error");
    text.textContent = json.text;
  } catch (e) {
    if (mine.signal.aborted) return;
    status.textContent = e instanceof Error ? e.message : String(e);
    status.classList.add("error");
  }
}

function soon() {
  window.clearTimeout(timer);
  timer = window.setTimeout(preview, 300);
}

/** A new format offers only its team's types. */
function typesOfTeam() {
  if (!teamChoice || !typeChoice) return;
  for (const option of Array.from(typeChoice.options)) {
    const other = option.dataset.team !== teamChoice.value;
    option.hidden = other;
    if (other) option.selected = false;
  }
}

teamChoice?.addEventListener("change", typesOfTeam);
typesOfTeam();
form?.addEventListener("input", soon);
form?.addEventListener("change", soon);
setChoice?.addEventListener("change", soon);
asOf?.addEventListener("input", soon);
preview();
