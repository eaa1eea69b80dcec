// Clinical mode in the pages: a verdict is an electronic signature (the user re-enters their
// password and says what the signature means), and changing an annotation that has a verdict
// asks for a reason. Both are asked in a modal dialog; the server decides when a reason is
// needed (`reason_required`), so the pages ask only then.
import { ApiError } from "./api.js";

/**
 * A modal dialog with `fields` and OK/Cancel; resolves to the form's values, or null when the
 * user cancels. Keys typed in it stay in it (the pages' shortcuts do not see them).
 * @param {string} title
 * @param {string} text
 * @param {(form: HTMLFormElement) => void} fill
 * @returns {Promise<FormData|null>}
 */
function ask(title, text, fill) {
  const dialog = document.createElement("dialog");
  dialog.className = "clinical";
  const form = document.createElement("form");
  form.method = "dialog";
  const heading = document.createElement("h2");
  heading.textContent = title;
  const explanation = document.createElement("p");
  explanation.textContent = text;
  form.append(heading, explanation);
  fill(form);
  const buttons = document.createElement("p");
  const ok = document.createElement("button");
  ok.type = "submit";
  ok.value = "ok";
  ok.textContent = "OK";
  const cancel = document.createElement("button");
  cancel.type = "button";
  cancel.textContent = "Cancel";
  buttons.append(ok, " ", cancel);
  form.append(buttons);
  dialog.append(form);
  document.body.append(dialog);
  dialog.addEventListener("keydown", (event) => event.stopPropagation());
  return new Promise((resolve) => {
    let values = /** @type {FormData|null} */ (null);
    form.addEventListener("submit", () => {
      values = new FormData(form);
    });
    cancel.addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(values);
    });
    dialog.showModal();
    /** @type {HTMLElement|null} */ (form.querySelector("input, textarea, select"))?.focus();
  });
}

/**
 * Asks why a change is made. Resolves to the reason, or null when the user cancels.
 * @param {string} what  e.g. "Deleting #12"
 */
export async function askReason(what) {
  const values = await ask(
    `${what}: why?`,
    "This image set is in clinical mode and the annotation has a verdict: the change is recorded with your reason.",
    (form) => {
      const area = document.createElement("textarea");
      area.name = "reason";
      area.required = true;
      area.maxLength = 1000;
      area.rows = 3;
      area.setAttribute("aria-label", "reason");
      form.append(area);
    },
  );
  const reason = values ? String(values.get("reason") || "").trim() : "";
  return reason || null;
}

/**
 * Runs `write(reason)` without a reason first; when the server says one is needed, asks for it
 * and runs it again with it. Resolves to what `write` gives, or null when the user cancels.
 * @template T
 * @param {string} what
 * @param {(reason: string|null) => Promise<T>} write
 * @returns {Promise<T|null>}
 */
export async function withReason(what, write) {
  try {
    return await write(null);
  } catch (e) {
    if (!(e instanceof ApiError) || e.code !== "reason_required") throw e;
  }
  const reason = await askReason(what);
  if (reason === null) return null;
  return write(reason);
}

/** The header that carries a reason where a request has no body (a delete). @param {string} reason */
export function reasonHeader(reason) {
  return { "X-Exact-Reason": encodeURIComponent(reason) };
}

/**
 * Asks for a signature: the user's password and the meaning (accepting: approved or reviewed;
 * rejecting: rejected). Resolves to what the verdict's body needs, or null when cancelled.
 * @param {string} what  e.g. "#12"
 * @param {boolean} verified
 * @returns {Promise<{password: string, meaning: string}|null>}
 */
export async function askSignature(what, verified) {
  const values = await ask(
    `Sign: ${verified ? "accept" : "reject"} ${what}`,
    "This image set is in clinical mode: your verdict is an electronic signature with your name, the time and its meaning, bound to this version of the annotation.",
    (form) => {
      const meaning = document.createElement("select");
      meaning.name = "meaning";
      meaning.setAttribute("aria-label", "meaning");
      for (const m of verified ? ["approved", "reviewed"] : ["rejected"]) {
        meaning.append(new Option(m, m));
      }
      const password = document.createElement("input");
      password.type = "password";
      password.name = "password";
      password.required = true;
      password.autocomplete = "current-password";
      password.setAttribute("aria-label", "password");
      const label = document.createElement("label");
      label.append("Password ", password);
      const meaningLabel = document.createElement("label");
      meaningLabel.append("Meaning ", meaning);
      form.append(label, " ", meaningLabel);
    },
  );
  if (!values) return null;
  return { password: String(values.get("password") || ""), meaning: String(values.get("meaning") || "") };
}
