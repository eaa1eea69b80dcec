// The home page's search: sets whose name or image names contain every word typed.
const search = /** @type {HTMLInputElement|null} */ (document.getElementById("search"));
const cards = Array.from(document.querySelectorAll("#sets .card"));

search?.addEventListener("input", () => {
  const words = search.value.toLowerCase().split(/\s+/).filter(Boolean);
  for (const card of cards) {
    const text = card.getAttribute("data-search") || "";
    /** @type {HTMLElement} */ (card).hidden = !words.every((w) => text.includes(w));
  }
});
