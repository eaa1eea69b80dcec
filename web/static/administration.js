// Colour swatches take their colour from the data (a style attribute would be inline style).
for (const swatch of document.querySelectorAll(".swatch[data-colour]")) {
  /** @type {HTMLElement} */ (swatch).style.backgroundColor = swatch.getAttribute("data-colour") || "";
}
