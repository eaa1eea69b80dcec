"""Sets up a team, set, product and box type, uploads SLIDE, and creates N annotations on it in
POSTed lists of 5,000 (uniform over the slide, 8 to 40 px boxes). Prints the image id, the
type id and the load rate.  Usage: load.py URL SLIDE N"""
import base64
import json
import random
import sys
import time
import urllib.request
import uuid

url, slide, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
auth = "Basic " + base64.b64encode(b"exact:bench-password").decode()


def call(method, path, body=None, content_type="application/json"):
    data = json.dumps(body).encode() if body is not None and content_type == "application/json" else body
    request = urllib.request.Request(url + path, data=data, method=method)
    request.add_header("Authorization", auth)
    if data is not None:
        request.add_header("Content-Type", content_type)
    with urllib.request.urlopen(request, timeout=600) as response:
        return json.loads(response.read() or b"null")


team = call("POST", "/api/v1/users/teams/", {"name": "Bench"})["id"]
image_set = call("POST", "/api/v1/images/image_sets/", {"name": "Bench set", "team": team})["id"]
product = call("POST", "/api/v1/administration/products/",
               {"name": "Bench product", "team": team, "imagesets": [image_set]})["id"]
box = call("POST", "/api/v1/annotations/annotation_types/",
           {"name": "cell", "product": product, "vector_type": 1})["id"]
boundary = "bench-boundary"
with open(slide, "rb") as f:
    content = f.read()
body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image_set\"\r\n\r\n{image_set}\r\n"
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"file_path\"; filename=\"slide.svs\"\r\n"
        f"Content-Type: application/octet-stream\r\n\r\n").encode() + content + f"\r\n--{boundary}--\r\n".encode()
uploaded = call("POST", "/api/v1/images/images/", body, f"multipart/form-data; boundary={boundary}")
image = uploaded["results"][0]
width, height = image["width"], image["height"]

random.seed(7)
started = time.monotonic()
done = 0
while done < count:
    n = min(5000, count - done)
    batch = []
    for _ in range(n):
        w, h = random.uniform(8, 40), random.uniform(8, 40)
        x, y = random.uniform(0, width - w), random.uniform(0, height - h)
        batch.append({"image": image["id"], "annotation_type": box,
                      "vector": {"x1": round(x, 1), "y1": round(y, 1),
                                 "x2": round(x + w, 1), "y2": round(y + h, 1)},
                      "unique_identifier": str(uuid.uuid4())})
    call("POST", "/api/v1/annotations/annotations/", batch)
    done += n
elapsed = time.monotonic() - started
print(json.dumps({"image": image["id"], "type": box, "width": width, "height": height,
                  "loaded": done, "load_per_s": round(done / elapsed)}))
