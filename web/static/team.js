// The team page: adding members by username (suggested as one types), granting and revoking
// admin, removing members and leaving, each one REST call; the page is reloaded to show the
// team as the server now has it, and a refusal is shown with the server's message.
import { api, ApiError } from "./api.js";

const page = /** @type {HTMLElement} */ (document.getElementById("team"));
const team = Number(page.dataset.team);
const me = Number(page.dataset.me);
const error = document.getElementById("error");
const form = /** @type {HTMLFormElement|null} */ (document.getElementById("add"));
const suggestions = document.getElementById("usernames");
const usernameInput = /** @type {HTMLInputElement|null} */ (form?.querySelector('input[name="username"]') ?? null);

/** @param {unknown} e */
function show(e) {
  const text = e instanceof Error ? e.message : String(e);
  if (error) error.textContent = text;
  else window.alert(text);
}

/** @param {() => Promise<unknown>} change */
async function apply(change) {
  try {
    await change();
    location.reload();
  } catch (e) {
    show(e);
  }
}

for (const button of page.querySelectorAll("button[data-action]")) {
  const row = /** @type {HTMLElement} */ (button.closest("tr"));
  const membership = row.dataset.membership;
  button.addEventListener("click", () => {
    const action = button.getAttribute("data-action");
    if (action === "admin") {
      const admin = button.getAttribute("data-admin") === "true";
      apply(() => api("PATCH", `/users/team_membership/${membership}/`, { body: { is_admin: admin } }));
    } else if (action === "remove") {
      const leaving = Number(row.dataset.user) === me;
      if (leaving && !window.confirm("Leave this team?")) return;
      apply(async () => {
        await api("DELETE", `/users/team_membership/${membership}/`);
        if (leaving) location.assign("/");
      });
    }
  });
}

let asked = "";
usernameInput?.addEventListener("input", async () => {
  const text = usernameInput.value.trim();
  if (text.length < 2 || text === asked || !suggestions) return;
  asked = text;
  try {
    const found = await api("GET", `/users/users/?username__contains=${encodeURIComponent(text)}&limit=20`);
    suggestions.replaceChildren(
      ...found.json.results.map((/** @type {{username: string}} */ u) => {
        const option = document.createElement("option");
        option.value = u.username;
        return option;
      }),
    );
  } catch {
    // Suggestions are a help; the add itself reports what is wrong.
  }
});

form?.addEventListener("submit", (event) => {
  event.preventDefault();
  const fields = new FormData(form);
  const username = String(fields.get("username") || "").trim();
  const isAdmin = fields.get("is_admin") !== null;
  apply(async () => {
    const found = await api("GET", `/users/users/?username=${encodeURIComponent(username)}`);
    const user = found.json.results[0];
    if (!user) throw new ApiError(404, { message: `there is no user ${username}` });
    await api("POST", "/users/team_membership/", { body: { team, user: user.id, is_admin: isAdmin } });
  });
});
