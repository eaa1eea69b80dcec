// The REST API as the pages call it: the session cookie travels by itself; every write
// carries the session's CSRF token; an error answer becomes an ApiError with the server's
// JSON (code, message, field), so a page can show it next to what it names.

/** The CSRF token the server put into the page. */
export function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.getAttribute("content") || "" : "";
}

export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {{code?: string, message?: string, field?: string|null}} body
   */
  constructor(status, body) {
    super(body.message || `the server answered ${status}`);
    this.status = status;
    this.code = body.code || "error";
    this.field = body.field || null;
  }
}

/**
 * One request to the API; JSON in, JSON out.
 * @param {string} method
 * @param {string} path  under /api/v1, e.g. "/annotations/annotations/"
 * @param {{body?: unknown, headers?: Record<string, string>, signal?: AbortSignal, keepalive?: boolean}} [options]
 * @returns {Promise<{status: number, etag: string|null, json: any}>}
 */
export async function api(method, path, options = {}) {
  /** @type {Record<string, string>} */
  const headers = { Accept: "application/json", ...(options.headers || {}) };
  /** @type {RequestInit} */
  const init = { method, headers, credentials: "same-origin", signal: options.signal, keepalive: options.keepalive };
  if (method !== "GET" && method !== "HEAD") {
    headers["X-CSRFToken"] = csrfToken();
  }
  if (options.body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(options.body);
  }
  const response = await fetch(`/api/v1${path}`, init);
  const text = await response.text();
  let json = null;
  if (text) {
    try {
      json = JSON.parse(text);
    } catch {
      json = { message: text };
    }
  }
  if (!response.ok) {
    throw new ApiError(response.status, json || {});
  }
  return { status: response.status, etag: response.headers.get("ETag"), json };
}
