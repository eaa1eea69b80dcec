"""The peer of the export benchmark (issue 18): Python's json module writing the same COCO
structure from the same rows of the same SQLite read models, as a script would. Prints the
annotations written and the seconds taken (reading included, interpreter start excluded).

    python3 coco_peer.py DATABASE IMAGE_SET OUTPUT
"""

import json
import math
import sqlite3
import sys
import time


def main() -> None:
    database, image_set, output = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    start = time.perf_counter()
    con = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    images = [
        {"id": i, "file_name": name, "width": w, "height": h}
        for i, name, w, h in con.execute(
            "SELECT id, name, width, height FROM images WHERE image_set = ? AND NOT deleted ORDER BY name, id",
            (image_set,),
        )
    ]
    ids = [i["id"] for i in images]
    kinds = {}
    categories = []
    annotations = []
    for id_, image, kind, vector, uuid in con.execute(
        f"SELECT id, image, annotation_type, vector, unique_identifier FROM annotations "
        f"WHERE image IN ({','.join(map(str, ids))}) AND NOT deleted AND vector IS NOT NULL ORDER BY id"
    ):
        if kind not in kinds:
            name, vector_type, closed = con.execute(
                "SELECT name, vector_type, closed FROM annotation_types WHERE id = ?", (kind,)
            ).fetchone()
            kinds[kind] = (vector_type, closed)
            categories.append({"id": kind, "name": name, "supercategory": ""})
        vector_type, closed = kinds[kind]
        v = json.loads(vector)
        nodes = []
        n = 1
        while f"x{n}" in v:
            nodes.append((float(v[f"x{n}"]), float(v[f"y{n}"])))
            n += 1
        xs = [x for x, _ in nodes]
        ys = [y for _, y in nodes]
        x0, y0, x1, y1 = min(xs), min(ys), max(xs), max(ys)
        bbox = [x0, y0, x1 - x0, y1 - y0]
        if vector_type in (1, 6):
            segmentation, area = [[x0, y0, x1, y0, x1, y1, x0, y1]], bbox[2] * bbox[3]
        elif vector_type == 5 and closed and len(nodes) >= 3:
            twice = sum(
                nodes[i][0] * nodes[(i + 1) % len(nodes)][1] - nodes[(i + 1) % len(nodes)][0] * nodes[i][1]
                for i in range(len(nodes))
            )
            segmentation, area = [[c for node in nodes for c in node]], abs(twice) / 2
        elif vector_type == 2:
            segmentation, area = [], math.pi * bbox[2] * bbox[3] / 4
        else:
            segmentation, area = [], 0.0
        annotations.append(
            {
                "id": id_,
                "image_id": image,
                "category_id": kind,
                "bbox": bbox,
                "area": area,
                "segmentation": segmentation,
                "iscrowd": 0,
                "exact_uuid": uuid,
            }
        )
    categories.sort(key=lambda c: c["id"])
    coco = {
        "info": {"description": "", "version": "", "date_created": "", "contributor": ""},
        "licenses": [],
        "images": images,
        "categories": categories,
        "annotations": annotations,
    }
    with open(output, "w") as out:
        json.dump(coco, out, separators=(",", ":"))
    print(len(annotations), time.perf_counter() - start)


if __name__ == "__main__":
    main()
