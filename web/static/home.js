// The home page: a search over set and image names, and creating a team.
import { api } from "./api.js";

const search = /** @type {HTMLInputElement|null} */ (document.getElementById("search"));
const tag = /** @type {HTMLSelectElement|null} */ (document.getElementById("tag"));
const cards = Array.from(document.querySelectorAll("#sets .card"));

// Sets whose name or image names contain every word typed, with the tag chosen.
function filterSets() {
  const words = (search?.value || "").toLowerCase().split(/\s+/).filter(Boolean);
  const wanted = tag?.value || "";
  for (const card of cards) {
    const text = card.getAttribute("data-search") || "";
    const tags = (card.getAttribute("data-tags") || "").split("\n");
    /** @type {HTMLElement} */ (card).hidden = !words.every((w) => text.includes(w)) || (wanted !== "" && !tags.includes(wanted));
  }
}
search?.addEventListener("input", filterSets);
tag?.addEventListener("change", filterSets);

// Pinning moves a set to the top (and back) at once; the server keeps it for the next visit.
const list = document.getElementById("sets");
/** @param {Element} card */
const isPinned = (card) => card.querySelector(".pin")?.getAttribute("aria-pressed") === "true";
/** The server's order: pinned first, then by priority, then by name.
 * @param {Element} a @param {Element} b */
const order = (a, b) =>
  Number(isPinned(b)) - Number(isPinned(a)) ||
  Number(b.getAttribute("data-priority")) - Number(a.getAttribute("data-priority")) ||
  (a.getAttribute("data-name") || "").localeCompare(b.getAttribute("data-name") || "");
for (const card of cards) {
  const button = card.querySelector(".pin");
  button?.addEventListener("click", async () => {
    const pin = !isPinned(card);
    try {
      await api(pin ? "PUT" : "DELETE", `/images/image_sets/${card.getAttribute("data-set")}/pin/`);
    } catch (e) {
      button.setAttribute("title", e instanceof Error ? e.message : String(e));
      return;
    }
    button.setAttribute("aria-pressed", String(pin));
    button.textContent = pin ? "★" : "☆";
    for (const c of [...cards].sort(order)) list?.appendChild(c);
    if (button instanceof HTMLElement) button.focus();
  });
}

const newTeam = /** @type {HTMLFormElement|null} */ (document.getElementById("new-team"));
newTeam?.addEventListener("submit", async (event) => {
  event.preventDefault();
  const error = document.getElementById("team-error");
  try {
    const name = String(new FormData(newTeam).get("name") || "").trim();
    const made = await api("POST", "/users/teams/", { body: { name } });
    location.assign(`/users/team/${made.json.id}/`);
  } catch (e) {
    if (error) error.textContent = e instanceof Error ? e.message : String(e);
  }
});
