"""The tiles a viewer asks for on a random walk over a slide: zoom in, pan, zoom out.

Prints one request path per line, for wrk (walk.lua). Viewports are 1600 x 900 screen pixels;
at each stop the walk asks for every tile of the current DeepZoom level that the viewport
shows, as OpenSeadragon does once it has settled. The walk is the same (same seed) whatever the
tile grid, so two servers with different tile sizes serve the same viewer session.

    python3 walk.py WIDTH HEIGHT TILE OVERLAP PREFIX [REQUESTS]
"""

import math
import random
import sys

VIEW_W, VIEW_H = 1600, 900


def main() -> None:
    width, height, tile, _overlap = (int(a) for a in sys.argv[1:5])
    prefix = sys.argv[5]
    wanted = int(sys.argv[6]) if len(sys.argv) > 6 else 40_000
    top = math.ceil(math.log2(max(width, height)))
    dims = []
    w, h = width, height
    for _ in range(top + 1):
        dims.append((w, h))
        w, h = max(1, math.ceil(w / 2)), max(1, math.ceil(h / 2))
    dims.reverse()  # DeepZoom level 0 is 1 x 1
    overview = next(z for z in range(top, -1, -1) if dims[z][0] <= VIEW_W and dims[z][1] <= VIEW_H)
    rng = random.Random(20261127)
    out = []

    def visible(z: int, cx: float, cy: float) -> None:
        ds = 2 ** (top - z)
        lw, lh = dims[z]
        x0, x1 = max(0, cx / ds - VIEW_W / 2), min(lw, cx / ds + VIEW_W / 2)
        y0, y1 = max(0, cy / ds - VIEW_H / 2), min(lh, cy / ds + VIEW_H / 2)
        for row in range(int(y0 // tile), int(max(y0, y1 - 1) // tile) + 1):
            for col in range(int(x0 // tile), int(max(x0, x1 - 1) // tile) + 1):
                out.append(f"{prefix}_files/{z}/{col}_{row}.jpeg")

    while len(out) < wanted:
        # From the overview, dive toward a random spot, look around, come back up part way.
        z = overview
        cx, cy = width / 2, height / 2
        visible(z, cx, cy)
        target = (rng.uniform(0.1, 0.9) * width, rng.uniform(0.1, 0.9) * height)
        while z < top:
            z += 1
            cx += (target[0] - cx) * 0.6
            cy += (target[1] - cy) * 0.6
            visible(z, cx, cy)
        for _ in range(rng.randint(4, 12)):
            ds = 2 ** (top - z)
            cx = min(width, max(0, cx + rng.choice((-1, 1)) * VIEW_W * ds * rng.uniform(0.3, 0.8)))
            cy = min(height, max(0, cy + rng.choice((-1, 1)) * VIEW_H * ds * rng.uniform(0.3, 0.8)))
            visible(z, cx, cy)
            if rng.random() < 0.3 and z > overview + 2:
                z -= 1
                visible(z, cx, cy)
    print("\n".join(out[:wanted]))


if __name__ == "__main__":
    main()
