// Shapes as EXACT stores them: a vector {"x1": .., "y1": .., "x2": .., ...} in level-0 pixels
// from the image's top-left corner. Here a shape is its list of nodes; what the nodes mean
// depends on the type's vector type (EXACT's codes below).

export const BOX = 1;
export const POINT = 2;
export const LINE = 3;
export const MULTI_LINE = 4;
export const POLYGON = 5;
export const FIXED_BOX = 6;
export const GLOBAL = 7;

/** @typedef {[number, number]} Node */

/**
 * The nodes of a vector, in the order of their numbers (x1/y1, x2/y2, ...).
 * @param {Record<string, number>|null} vector
 * @returns {Node[]}
 */
export function nodesOf(vector) {
  if (!vector) return [];
  /** @type {Node[]} */
  const nodes = [];
  for (let i = 1; `x${i}` in vector && `y${i}` in vector; i++) {
    nodes.push([Number(vector[`x${i}`]), Number(vector[`y${i}`])]);
  }
  return nodes;
}

/**
 * The vector of `nodes`, rounded to a tenth of a pixel.
 * @param {Node[]} nodes
 * @returns {Record<string, number>}
 */
export function vectorOf(nodes) {
  /** @type {Record<string, number>} */
  const vector = {};
  nodes.forEach(([x, y], i) => {
    vector[`x${i + 1}`] = Math.round(x * 10) / 10;
    vector[`y${i + 1}`] = Math.round(y * 10) / 10;
  });
  return vector;
}

/**
 * The box spanned by two corners given in any order.
 * @param {Node} a
 * @param {Node} b
 * @returns {Node[]}
 */
export function box(a, b) {
  return [
    [Math.min(a[0], b[0]), Math.min(a[1], b[1])],
    [Math.max(a[0], b[0]), Math.max(a[1], b[1])],
  ];
}

/**
 * A box of `width` × `height` around `centre`.
 * @param {Node} centre
 * @param {number} width
 * @param {number} height
 * @returns {Node[]}
 */
export function boxAround(centre, width, height) {
  return [
    [centre[0] - width / 2, centre[1] - height / 2],
    [centre[0] + width / 2, centre[1] + height / 2],
  ];
}

/**
 * Keeps a shape inside the image, as the server requires.
 * @param {Node[]} nodes
 * @param {number} width
 * @param {number} height
 * @returns {Node[]}
 */
export function clamp(nodes, width, height) {
  return nodes.map(([x, y]) => [Math.min(Math.max(x, 0), width), Math.min(Math.max(y, 0), height)]);
}

/**
 * @param {Node[]} nodes
 * @returns {{minX: number, minY: number, maxX: number, maxY: number}}
 */
export function bounds(nodes) {
  const xs = nodes.map((n) => n[0]);
  const ys = nodes.map((n) => n[1]);
  return { minX: Math.min(...xs), minY: Math.min(...ys), maxX: Math.max(...xs), maxY: Math.max(...ys) };
}

/**
 * @param {Node} p
 * @param {Node} a
 * @param {Node} b
 */
function distanceToSegment(p, a, b) {
  const [dx, dy] = [b[0] - a[0], b[1] - a[1]];
  const length = dx * dx + dy * dy;
  const t = length === 0 ? 0 : Math.max(0, Math.min(1, ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / length));
  return Math.hypot(p[0] - (a[0] + t * dx), p[1] - (a[1] + t * dy));
}

/**
 * @param {Node} p
 * @param {Node[]} polygon
 */
function inside(p, polygon) {
  let result = false;
  for (let i = 0, j = polygon.length - 1; i < polygon.length; j = i++) {
    const [xi, yi] = polygon[i];
    const [xj, yj] = polygon[j];
    if (yi > p[1] !== yj > p[1] && p[0] < ((xj - xi) * (p[1] - yi)) / (yj - yi) + xi) {
      result = !result;
    }
  }
  return result;
}

/**
 * Whether `p` (image pixels) touches the shape, within `tolerance` pixels of its outline.
 * @param {number} vectorType
 * @param {Node[]} nodes
 * @param {Node} p
 * @param {number} tolerance
 */
export function hits(vectorType, nodes, p, tolerance) {
  if (nodes.length === 0) return false;
  switch (vectorType) {
    case BOX:
    case FIXED_BOX:
    case POINT: {
      if (nodes.length === 1) return Math.hypot(p[0] - nodes[0][0], p[1] - nodes[0][1]) <= tolerance * 2;
      const b = bounds(nodes);
      return p[0] >= b.minX - tolerance && p[0] <= b.maxX + tolerance && p[1] >= b.minY - tolerance && p[1] <= b.maxY + tolerance;
    }
    case POLYGON:
      if (inside(p, nodes)) return true;
      return nodes.some((n, i) => distanceToSegment(p, n, nodes[(i + 1) % nodes.length]) <= tolerance);
    default:
      return nodes.slice(1).some((n, i) => distanceToSegment(p, nodes[i], n) <= tolerance);
  }
}

/**
 * The index of the node of `nodes` within `tolerance` of `p`, or -1.
 * @param {Node[]} nodes
 * @param {Node} p
 * @param {number} tolerance
 */
export function nodeAt(nodes, p, tolerance) {
  return nodes.findIndex((n) => Math.hypot(n[0] - p[0], n[1] - p[1]) <= tolerance);
}

/**
 * The handles of a shape: a box's four corners, every node of the others.
 * @param {number} vectorType
 * @param {Node[]} nodes
 * @returns {Node[]}
 */
export function handles(vectorType, nodes) {
  if ((vectorType === BOX || vectorType === POINT) && nodes.length === 2) {
    const [[x1, y1], [x2, y2]] = nodes;
    return [[x1, y1], [x2, y1], [x2, y2], [x1, y2]];
  }
  return nodes;
}

/**
 * The shape with handle `index` (of [`handles`]) moved to `p`.
 * @param {number} vectorType
 * @param {Node[]} nodes
 * @param {number} index
 * @param {Node} p
 * @returns {Node[]}
 */
export function moveHandle(vectorType, nodes, index, p) {
  if ((vectorType === BOX || vectorType === POINT) && nodes.length === 2) {
    const corners = handles(vectorType, nodes);
    const opposite = corners[(index + 2) % 4];
    return box(opposite, p);
  }
  return nodes.map((n, i) => (i === index ? p : n));
}

/**
 * @param {Node[]} nodes
 * @param {number} dx
 * @param {number} dy
 * @returns {Node[]}
 */
export function translate(nodes, dx, dy) {
  return nodes.map(([x, y]) => [x + dx, y + dy]);
}

/**
 * Adds the outline of a shape to `context`'s current path, its nodes already in screen
 * pixels: a box as a rectangle, a point as the ellipse in its box (or a dot at its centre),
 * every other shape as lines through its nodes, closed for polygons.
 * @param {CanvasRenderingContext2D} context
 * @param {number} vectorType
 * @param {Node[]} points
 */
export function trace(context, vectorType, points) {
  if (points.length === 0) return;
  if ((vectorType === BOX || vectorType === FIXED_BOX) && points.length === 2) {
    const [[x1, y1], [x2, y2]] = points;
    context.rect(x1, y1, x2 - x1, y2 - y1);
  } else if (vectorType === POINT) {
    if (points.length === 2) {
      const [[x1, y1], [x2, y2]] = points;
      context.ellipse((x1 + x2) / 2, (y1 + y2) / 2, Math.abs(x2 - x1) / 2, Math.abs(y2 - y1) / 2, 0, 0, 2 * Math.PI);
    } else {
      context.arc(points[0][0], points[0][1], 5, 0, 2 * Math.PI);
    }
  } else {
    context.moveTo(points[0][0], points[0][1]);
    for (const [x, y] of points.slice(1)) context.lineTo(x, y);
    if (vectorType === POLYGON) context.closePath();
  }
}

/**
 * The shape with `p` added as a node on its nearest edge (the closing edge too, for a closed
 * shape).
 * @param {Node[]} nodes
 * @param {Node} p
 * @param {boolean} closed
 * @returns {Node[]}
 */
export function insertNode(nodes, p, closed) {
  let best = 0;
  let bestDistance = Infinity;
  const edges = closed ? nodes.length : nodes.length - 1;
  for (let i = 0; i < edges; i++) {
    const d = distanceToSegment(p, nodes[i], nodes[(i + 1) % nodes.length]);
    if (d < bestDistance) {
      best = i;
      bestDistance = d;
    }
  }
  return [...nodes.slice(0, best + 1), p, ...nodes.slice(best + 1)];
}
