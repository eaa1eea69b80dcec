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
