// The set page's import: a file of labels (EXACT's lines, COCO, CSV, GeoJSON, ASAP or
// ImageScope XML) sent as multipart to the set's import route with the session's CSRF token;
// the report is shown: what was applied, what was there already, and each refusal by its line
// or path (nothing is applied while there are refusals, unless the user asks for the rest).

import { csrfToken } from "./api.js";

const form = /** @type {HTMLFormElement|null} */ (document.getElementById("import-form"));
const report = document.getElementById("import-report");
const set = document.getElementById("imageset")?.dataset.set;

/** @param {string} text @param {string} [kind] */
function say(text, kind) {
  if (!report) return;
  const line = document.createElement("p");
  line.textContent = text;
  if (kind) line.className = kind;
  report.append(line);
}

form?.addEventListener("submit", async (e) => {
  e.preventDefault();
  if (!report) return;
  report.replaceChildren();
  const button = /** @type {HTMLButtonElement|null} */ (form.querySelector('button[type="submit"]'));
  if (button) button.disabled = true;
  try {
    const response = await fetch(`/api/v1/images/image_sets/${set}/import/`, {
      method: "POST",
      body: new FormData(form),
      credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRFToken": csrfToken() },
    });
    const body = await response.json().catch(() => ({ message: `the server answered ${response.status}` }));
    const result = response.ok ? body : body.report;
    if (response.ok) {
      say(`applied ${result.applied}, already there ${result.unchanged}` +
        (result.created_types.length ? `; types made: ${result.created_types.join(", ")}` : ""), "done");
    } else {
      say(body.message || `the server answered ${response.status}`, "error");
    }
    if (result && result.refused && result.refused.length) {
      const list = document.createElement("ul");
      list.className = "refusals";
      for (const refusal of result.refused.slice(0, 50)) {
        const item = document.createElement("li");
        item.textContent = `${refusal.at}: ${refusal.reason}`;
        list.append(item);
      }
      report.append(list);
    }
  } catch (error) {
    say(`the import could not be sent: ${error}`, "error");
  } finally {
    if (button) button.disabled = false;
  }
});
