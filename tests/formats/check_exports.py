"""Reads Exact's exports with the field's own tools (issue 18): pycocotools loads the COCO file
and rasterises its segmentations, shapely reads the GeoJSON geometries. Exit 0 and print "ok"
if every check holds; an assertion names the first that does not.

    python check_exports.py COCO_JSON GEOJSON_FILE VOC_XML YOLO_LABELS YOLO_CLASSES
"""

import json
import sys
import xml.etree.ElementTree as ElementTree

from pycocotools.coco import COCO
from shapely.geometry import shape


def main() -> None:
    coco_path, geojson_path, voc_path, yolo_path, classes_path = sys.argv[1:6]
    coco = COCO(coco_path)
    annotations = coco.loadAnns(coco.getAnnIds())
    assert annotations, "COCO: no annotations"
    names = {c["id"]: c["name"] for c in coco.loadCats(coco.getCatIds())}
    image = coco.loadImgs(coco.getImgIds())[0]
    for a in annotations:
        x, y, w, h = a["bbox"]
        assert 0 <= x and 0 <= y and x + w <= image["width"] and y + h <= image["height"], a
        if a["segmentation"]:
            mask = coco.annToMask(a)
            assert mask.shape == (image["height"], image["width"]), mask.shape
            # The raster of a polygon covers its area, give or take its outline.
            perimeter = 2 * (w + h)
            assert abs(int(mask.sum()) - a["area"]) <= perimeter, (a, int(mask.sum()))

    features = json.load(open(geojson_path))["features"]
    shapes = [shape(f["geometry"]) for f in features if f["geometry"]]
    assert all(s.is_valid for s in shapes), [s.wkt for s in shapes if not s.is_valid]
    polygon_areas = sorted(round(s.area, 6) for s in shapes if s.geom_type == "Polygon")
    coco_areas = sorted(round(a["area"], 6) for a in annotations if a["segmentation"])
    assert polygon_areas == coco_areas, (polygon_areas, coco_areas)

    voc = ElementTree.parse(voc_path).getroot()
    assert voc.findtext("filename") == image["file_name"]
    boxes = sorted(
        [float(o.findtext(f"bndbox/{k}")) for k in ("xmin", "ymin", "xmax", "ymax")]
        for o in voc.iter("object")
    )
    coco_boxes = sorted([a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]] for a in annotations)
    assert boxes == coco_boxes, (boxes, coco_boxes)

    classes = open(classes_path).read().splitlines()
    assert classes == [names[i] for i in sorted(names)], (classes, names)
    rows = [line.split() for line in open(yolo_path).read().splitlines()]
    assert len(rows) == len(annotations), (len(rows), len(annotations))
    for row in rows:
        assert 0 <= int(row[0]) < len(classes), row
        assert all(0.0 <= float(v) <= 1.0 for v in row[1:]), row
    print("ok")


if __name__ == "__main__":
    main()
