// The home page: a search over set and image names, and creating a team.
import { api } from "./api.js";

// Sets whose name or image names contain every word typed.
const search = /** @type {HTMLInputElement|null} */ (document.getElementById("search"));
const cards = Array.from(document.querySelectorAll("#sets .card"));

search?.addEventListener("input", () => {
  const words = search.value.toLowerCase().split(/\s+/).filter(Boolean);
  for (const card of cards) {
    const text = card.getAttribute("data-search") || "";
    /** @type {HTMLElement} */ (card).hidden = !words.every((w) => text.includes(w));
  }
});

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
