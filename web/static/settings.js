// Personal access tokens: listed, made (the token is shown this once) and revoked.
import { api } from "./api.js";

const body = /** @type {HTMLElement} */ (document.querySelector("#tokens tbody"));
const form = /** @type {HTMLFormElement} */ (document.getElementById("new-token"));
const shown = /** @type {HTMLElement} */ (document.getElementById("token-shown"));
const error = /** @type {HTMLElement} */ (document.getElementById("token-error"));

/** @param {unknown} e */
function fail(e) {
  error.textContent = e instanceof Error ? e.message : String(e);
}

async function list() {
  const answer = await api("GET", "/users/tokens/?limit=1000");
  body.replaceChildren(
    ...answer.json.results.map((/** @type {{id: string, name: string, created: string, revoked: string|null}} */ t) => {
      const row = document.createElement("tr");
      row.dataset.token = t.id;
      for (const text of [t.name, t.created.slice(0, 16).replace("T", " "), t.revoked ? t.revoked.slice(0, 16).replace("T", " ") : "–"]) {
        const cell = document.createElement("td");
        cell.textContent = text;
        row.append(cell);
      }
      const actions = document.createElement("td");
      if (!t.revoked) {
        const revoke = document.createElement("button");
        revoke.type = "button";
        revoke.textContent = "Revoke";
        revoke.addEventListener("click", () =>
          api("DELETE", `/users/tokens/${t.id}/`).then(list).catch(fail),
        );
        actions.append(revoke);
      }
      row.append(actions);
      return row;
    }),
  );
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  error.textContent = "";
  try {
    const name = String(new FormData(form).get("name") || "").trim();
    const made = await api("POST", "/users/tokens/", { body: { name } });
    shown.hidden = false;
    shown.textContent = `Your new token (copy it now, it is not shown again): ${made.json.token}`;
    form.reset();
    await list();
  } catch (e) {
    fail(e);
  }
});

list().catch(fail);
