// The set page's upload: files dropped or chosen are sent one request each (multipart, to
// /api/v1/images/images/), each with its own progress bar; a file the server refuses shows
// the server's message beside it while the others go on. New images join the grid.
import { api, ApiError, csrfToken } from "./api.js";

const page = /** @type {HTMLElement} */ (document.getElementById("imageset"));
const setId = page.dataset.set || "";
const drop = document.getElementById("drop");
const input = /** @type {HTMLInputElement|null} */ (document.getElementById("files"));
const progress = document.getElementById("progress");
const grid = /** @type {HTMLElement} */ (document.getElementById("images"));

/**
 * Sends one file; resolves when the server has answered.
 * @param {File} file
 */
function upload(file) {
  const row = document.createElement("li");
  const name = document.createElement("span");
  name.className = "name";
  name.textContent = file.name;
  const bar = document.createElement("progress");
  bar.max = 1;
  bar.value = 0;
  const note = document.createElement("span");
  note.className = "note";
  row.append(name, bar, note);
  progress?.append(row);

  const form = new FormData();
  form.append("image_set", setId);
  form.append("file_path", file, file.name);
  return new Promise((resolve) => {
    const request = new XMLHttpRequest();
    request.open("POST", "/api/v1/images/images/");
    request.setRequestHeader("X-CSRFToken", csrfToken());
    request.setRequestHeader("Accept", "application/json");
    request.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable) bar.value = e.loaded / e.total;
    });
    request.addEventListener("load", () => {
      let body = null;
      try {
        body = JSON.parse(request.responseText);
      } catch {
        body = { message: request.responseText };
      }
      if (request.status === 201) {
        bar.value = 1;
        row.classList.add("done");
        const images = body.results || [];
        note.textContent = `added ${images.length} image${images.length === 1 ? "" : "s"}`;
        for (const image of images) addToGrid(image);
      } else {
        row.classList.add("failed");
        note.textContent = (body && body.message) || `refused (${request.status})`;
      }
      resolve(undefined);
    });
    request.addEventListener("error", () => {
      row.classList.add("failed");
      note.textContent = "the connection failed";
      resolve(undefined);
    });
    request.send(form);
  });
}

/** @param {{id: number, name: string, width: number, height: number}} image */
function addToGrid(image) {
  grid.querySelector("li.muted")?.remove();
  const item = document.createElement("li");
  item.className = "thumb";
  item.dataset.image = String(image.id);
  const link = document.createElement("a");
  link.href = `/annotations/${image.id}/`;
  const img = document.createElement("img");
  img.src = `/api/v1/images/images/${image.id}/thumbnail/`;
  img.alt = "";
  img.width = 128;
  img.height = 128;
  const name = document.createElement("span");
  name.className = "name";
  name.textContent = image.name;
  link.append(img, name);
  const size = document.createElement("span");
  size.className = "muted";
  size.textContent = `${image.width} × ${image.height} · 0 annotations`;
  item.append(link, size);
  grid.append(item);
}

/** @param {FileList|File[]} files */
async function uploadAll(files) {
  // One after another: a slide is gigabytes; the server streams each to disk.
  for (const file of Array.from(files)) {
    await upload(file);
  }
}

drop?.addEventListener("dragover", (e) => {
  e.preventDefault();
  drop.classList.add("over");
});
drop?.addEventListener("dragleave", () => drop.classList.remove("over"));
drop?.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  if (e.dataTransfer) uploadAll(e.dataTransfer.files);
});
input?.addEventListener("change", () => {
  if (input.files) uploadAll(input.files).then(() => (input.value = ""));
});

// EXACT's filters of the set page: verified, unverified, without annotations, computer-generated
// (SERVER_GENERATED images), or with annotations of one type.
const filter = /** @type {HTMLSelectElement|null} */ (document.getElementById("filter"));
const shownCount = document.getElementById("shown-count");

/** @param {HTMLElement} item @param {string} wanted */
function passes(item, wanted) {
  const total = Number(item.dataset.total || 0);
  const unverified = Number(item.dataset.unverified || 0);
  if (wanted === "verified") return total > 0 && unverified === 0;
  if (wanted === "unverified") return unverified > 0;
  if (wanted === "empty") return total === 0;
  if (wanted === "generated") return item.dataset.imageType === "1";
  if (wanted.startsWith("type:")) return (item.dataset.types || "").split(",").includes(wanted.slice(5));
  return true;
}

filter?.addEventListener("change", () => {
  let shown = 0;
  for (const item of grid.querySelectorAll(".thumb")) {
    const element = /** @type {HTMLElement} */ (item);
    element.hidden = !passes(element, filter.value);
    if (!element.hidden) shown += 1;
  }
  if (shownCount) shownCount.textContent = `${shown} image${shown === 1 ? "" : "s"}`;
});

// Linking a product offers its types in this set; unlinking stops offering them. The product's
// list of sets is changed with If-Match, so a link someone made meanwhile is never undone: on
// a conflict the list is read again and the change applied to it.
const productsError = document.getElementById("products-error");
for (const box of /** @type {NodeListOf<HTMLInputElement>} */ (document.querySelectorAll("#products input[data-product]"))) {
  box.addEventListener("change", async () => {
    const path = `/administration/products/${box.dataset.product}/`;
    const id = Number(setId);
    if (productsError) productsError.textContent = "";
    box.disabled = true;
    try {
      for (let attempt = 0; ; attempt++) {
        const current = await api("GET", path);
        /** @type {number[]} */
        const sets = current.json.imagesets.filter((/** @type {number} */ s) => s !== id);
        if (box.checked) sets.push(id);
        try {
          await api("PATCH", path, { body: { imagesets: sets }, headers: { "If-Match": current.etag || "" } });
          break;
        } catch (e) {
          if (!(e instanceof ApiError && e.status === 412) || attempt > 2) throw e;
        }
      }
    } catch (e) {
      box.checked = !box.checked;
      if (productsError) productsError.textContent = e instanceof Error ? e.message : String(e);
    } finally {
      box.disabled = false;
      box.focus();
    }
  });
}
