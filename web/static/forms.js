// Forms that write through the REST API: `<form data-api="METHOD /path/">` sends its fields
// as JSON (checkboxes as booleans, number inputs and `data-kind="int"` selects as numbers,
// `multiple` selects as lists of numbers, `data-kind="list"` text as a comma-separated list;
// an empty choice is null and other empty fields are left out) and reloads the
// page when the server accepts; a refusal is shown in the form's `[data-error]`, next to the
// field the server names (a form's `data-then` is where to go instead, `{id}` standing for the
// id the server answered with). `<button data-api="DELETE /path/">` does the same for one call.
import { api, ApiError } from "./api.js";

/**
 * @param {HTMLFormElement} form
 * @returns {Record<string, unknown>}
 */
export function fieldsOf(form) {
  /** @type {Record<string, unknown>} */
  const body = {};
  for (const element of Array.from(form.elements)) {
    const field = /** @type {HTMLInputElement|HTMLSelectElement|HTMLTextAreaElement} */ (element);
    if (!field.name || field.disabled) continue;
    if (field instanceof HTMLInputElement && field.type === "checkbox") {
      body[field.name] = field.checked;
    } else if (field.dataset.kind === "list") {
      body[field.name] = field.value.split(",").map((v) => v.trim()).filter(Boolean);
    } else if (field instanceof HTMLSelectElement && field.multiple) {
      body[field.name] = Array.from(field.selectedOptions).map((o) => Number(o.value));
    } else if (field.value === "") {
      // An emptied choice (a set's main type) is sent as null; other empty fields are left out.
      if (field instanceof HTMLSelectElement) body[field.name] = null;
      continue;
    } else if ((field instanceof HTMLInputElement && field.type === "number") || field.dataset.kind === "int") {
      body[field.name] = Number(field.value);
    } else {
      body[field.name] = field.value;
    }
  }
  return body;
}

/**
 * @param {HTMLElement} where  the form or button
 * @param {unknown} e
 */
function showError(where, e) {
  const form = where.closest("form") || where.closest("[data-errors]") || where.parentElement;
  const box = form?.querySelector("[data-error]");
  const text = e instanceof Error ? e.message : String(e);
  for (const marked of form?.querySelectorAll(".invalid") || []) marked.classList.remove("invalid");
  if (e instanceof ApiError && e.field && form) {
    const field = form.querySelector(`[name="${CSS.escape(e.field)}"]`);
    field?.classList.add("invalid");
    if (box) box.textContent = `${e.field}: ${text}`;
  } else if (box) {
    box.textContent = text;
  } else {
    window.alert(text);
  }
}

/** @param {string} spec  "METHOD /path/" */
function request(spec) {
  const [method, path] = spec.split(" ");
  return { method, path };
}

for (const form of document.querySelectorAll("form[data-api]")) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const element = /** @type {HTMLFormElement} */ (form);
    const { method, path } = request(element.dataset.api || "");
    try {
      const { json } = await api(method, path, { body: fieldsOf(element) });
      if (element.dataset.then) location.assign(element.dataset.then.replace("{id}", String(json?.id ?? "")));
      else location.reload();
    } catch (e) {
      showError(element, e);
    }
  });
}

for (const button of document.querySelectorAll("button[data-api]")) {
  button.addEventListener("click", async () => {
    const element = /** @type {HTMLButtonElement} */ (button);
    if (element.dataset.confirm && !window.confirm(element.dataset.confirm)) return;
    const { method, path } = request(element.dataset.api || "");
    try {
      await api(method, path, element.dataset.body ? { body: JSON.parse(element.dataset.body) } : {});
      if (element.dataset.then) location.assign(element.dataset.then);
      else location.reload();
    } catch (e) {
      showError(element, e);
    }
  });
}
