#!/usr/bin/env python3
"""Fifty annotators at work on a served Exact for a minute, then the books are checked.

    python3 annotators.py URL [--annotators 50] [--seconds 60]

Each annotator is an account of its own in one team, on a connection of its own (HTTP Basic,
keep-alive), and loops with think times: open an image, list a viewport of it, create a box
(with a UUID of its own), change one of its boxes, verify a box, delete one of its boxes, and
now and then import a list of 200 boxes. Afterwards, through the API: every acknowledged
creation is there exactly once (deleted if its deletion was acknowledged), no refused one is
there, and no answer was a 5xx. Prints one JSON report: per operation count, p50 and p99 in
ms, refusals; the throughput; the checks. Exits 1 if a check fails. Standard library only.
"""

import argparse
import base64
import http.client
import json
import random
import struct
import sys
import threading
import time
import urllib.parse
import uuid
import zlib

IMAGES = 5
SIDE = 2000


def png(width, height, seed):
    """A gradient PNG, different per seed: rows of a filter byte and RGB pixels."""
    raw = b"".join(b"\x00" + bytes(((seed * 37) % 256, (y * 3) % 256, (seed * 50 + y) % 256)) * width
                   for y in range(height))

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b""))


class Client:
    """One keep-alive connection as one account."""

    def __init__(self, url, user, password):
        parsed = urllib.parse.urlparse(url)
        self.host, self.port = parsed.hostname, parsed.port
        self.auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.conn = None

    def call(self, method, path, body=None, content_type="application/json"):
        headers = {"Authorization": self.auth}
        if body is not None and content_type == "application/json":
            body = json.dumps(body)
        if body is not None:
            headers["Content-Type"] = content_type
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
            try:
                self.conn.request(method, path, body=body, headers=headers)
                response = self.conn.getresponse()
                data = response.read()
                break
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        try:
            parsed = json.loads(data) if data else None
        except ValueError:
            parsed = None
        return response.status, parsed


def created(client, path, body):
    status, answer = client.call("POST", path, body)
    if status != 201:
        sys.exit(f"setup: POST {path} answered {status}: {answer}")
    return answer


def multipart(fields, name, data):
    boundary = "annotators-" + uuid.uuid4().hex
    parts = []
    for key, value in fields.items():
        parts.append(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{key}\"\r\n\r\n{value}\r\n".encode())
    parts.append(f"--{boundary}\r\nContent-Disposition: form-data; name=\"file_path\"; filename=\"{name}\"\r\n"
                 "Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def setup(url, annotators):
    admin = Client(url, "exact", "bench-password")
    team = created(admin, "/api/v1/users/teams/", {"name": f"load {uuid.uuid4().hex[:8]}"})["id"]
    image_set = created(admin, "/api/v1/images/image_sets/", {"name": "load set", "team": team})["id"]
    product = created(admin, "/api/v1/administration/products/",
                      {"name": "load product", "team": team, "imagesets": [image_set]})["id"]
    types = [created(admin, "/api/v1/annotations/annotation_types/",
                     {"name": name, "product": product, "vector_type": 1})["id"]
             for name in ("mitosis", "lookalike")]
    images = []
    for n in range(IMAGES):
        body, content_type = multipart({"image_set": image_set}, f"field-{n}.png", png(SIDE, SIDE, n))
        status, answer = admin.call("POST", "/api/v1/images/images/", body, content_type)
        if status != 201:
            sys.exit(f"setup: the upload answered {status}: {answer}")
        images.append(answer["results"][0]["id"])
    users = []
    for n in range(annotators):
        name = f"annotator{n}-{uuid.uuid4().hex[:6]}"
        user = created(admin, "/api/v1/users/users/", {"username": name, "password": f"pw-{name}"})["id"]
        created(admin, "/api/v1/users/team_membership/", {"team": team, "user": user})
        users.append((name, f"pw-{name}"))
    return images, types, users


def box(image, annotation_type, uid=None):
    x, y = random.uniform(0, SIDE - 60), random.uniform(0, SIDE - 60)
    w, h = random.uniform(8, 50), random.uniform(8, 50)
    body = {"image": image, "annotation_type": annotation_type,
            "vector": {"x1": round(x, 1), "y1": round(y, 1), "x2": round(x + w, 1), "y2": round(y + h, 1)}}
    if uid:
        body["unique_identifier"] = uid
    return body


class Books:
    """What every annotator saw, under one lock."""

    def __init__(self):
        self.lock = threading.Lock()
        self.latencies = {}
        self.refused = {}
        self.server_errors = []
        self.acknowledged = {}  # uuid -> id
        self.refused_creations = set()
        self.deleted = set()  # ids

    def note(self, operation, seconds, status, answer):
        with self.lock:
            self.latencies.setdefault(operation, []).append(seconds)
            if status >= 500:
                self.server_errors.append((operation, status, answer))
            elif status >= 400:
                self.refused.setdefault(operation, {}).setdefault(str(status), 0)
                self.refused[operation][str(status)] += 1


def annotator(url, user, images, types, deadline, books, seed):
    rng = random.Random(seed)
    random.seed(seed)
    client = Client(url, *user)
    mine = []

    def timed(operation, method, path, body=None):
        started = time.perf_counter()
        status, answer = client.call(method, path, body)
        books.note(operation, time.perf_counter() - started, status, answer)
        return status, answer

    loops = 0
    while time.time() < deadline:
        loops += 1
        image = rng.choice(images)
        timed("open image", "GET", f"/api/v1/images/images/{image}/")
        x, y = rng.uniform(0, SIDE - 500), rng.uniform(0, SIDE - 500)
        timed("viewport list", "GET", f"/api/v1/annotations/annotations/?image={image}&deleted=false"
              f"&in_bbox={x:.0f},{y:.0f},{x + 500:.0f},{y + 500:.0f}&limit=10000")
        uid = str(uuid.uuid4())
        status, answer = timed("create", "POST", "/api/v1/annotations/annotations/",
                               box(image, rng.choice(types), uid))
        with books.lock:
            if status == 201:
                books.acknowledged[uid] = answer["id"]
                mine.append(answer["id"])
            elif 400 <= status < 500:
                books.refused_creations.add(uid)
        time.sleep(rng.uniform(0.02, 0.1))
        if mine:
            target = rng.choice(mine)
            moved = box(image, types[0])["vector"]
            timed("edit", "PATCH", f"/api/v1/annotations/annotations/{target}/", {"vector": moved})
            timed("verify", "POST", "/api/v1/annotations/verifications/",
                  {"annotation": rng.choice(mine), "verified": rng.random() < 0.8})
        if len(mine) > 3 and rng.random() < 0.25:
            target = mine.pop(rng.randrange(len(mine)))
            status, _ = timed("delete", "DELETE", f"/api/v1/annotations/annotations/{target}/")
            if status in (200, 204):
                with books.lock:
                    books.deleted.add(target)
        if loops % 40 == 0:
            batch = [box(image, rng.choice(types), str(uuid.uuid4())) for _ in range(200)]
            status, answer = timed("bulk import (200)", "POST", "/api/v1/annotations/annotations/", batch)
            with books.lock:
                if status == 201:
                    rows = answer if isinstance(answer, list) else answer.get("results", [])
                    for sent, row in zip(batch, rows):
                        books.acknowledged[sent["unique_identifier"]] = row["id"]
                elif 400 <= status < 500:
                    books.refused_creations.update(b["unique_identifier"] for b in batch)
        time.sleep(rng.uniform(0.05, 0.2))


def check(url, images, books):
    admin = Client(url, "exact", "bench-password")
    seen = {}
    for image in images:
        for deleted in ("false", "true"):
            offset = 0
            while True:
                status, answer = admin.call(
                    "GET", f"/api/v1/annotations/annotations/?image={image}&deleted={deleted}"
                    f"&limit=10000&offset={offset}")
                if status != 200:
                    sys.exit(f"check: the list answered {status}: {answer}")
                for row in answer["results"]:
                    uid = row.get("unique_identifier")
                    seen.setdefault(uid, []).append((row["id"], row.get("deleted")))
                offset += len(answer["results"])
                if not answer.get("next"):
                    break
    problems = []
    for uid, ident in books.acknowledged.items():
        rows = seen.get(uid, [])
        if len(rows) != 1:
            problems.append(f"acknowledged {uid} (id {ident}) is there {len(rows)} times")
        elif (ident in books.deleted) != bool(rows[0][1]):
            problems.append(f"{ident}: deleted is {rows[0][1]}, its deletion acknowledged: {ident in books.deleted}")
    for uid in books.refused_creations:
        if uid in seen:
            problems.append(f"refused {uid} is there")
    return problems, sum(len(r) for r in seen.values())


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))] * 1000


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--annotators", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    images, types, users = setup(args.url, args.annotators)
    books = Books()
    started = time.time()
    deadline = started + args.seconds
    threads = [threading.Thread(target=annotator, args=(args.url, user, images, types, deadline, books, n))
               for n, user in enumerate(users)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.time() - started
    problems, rows = check(args.url, images, books)
    if books.server_errors:
        problems.append(f"{len(books.server_errors)} answers were 5xx, first: {books.server_errors[0]}")
    requests = sum(len(v) for v in books.latencies.values())
    report = {
        "annotators": args.annotators,
        "seconds": round(elapsed, 1),
        "requests": requests,
        "requests_per_s": round(requests / elapsed, 1),
        "operations": {
            name: {"count": len(v), "p50_ms": round(percentile(v, 0.5), 1),
                   "p99_ms": round(percentile(v, 0.99), 1), "refused": books.refused.get(name, {})}
            for name, v in sorted(books.latencies.items())
        },
        "acknowledged_creations": len(books.acknowledged),
        "acknowledged_deletions": len(books.deleted),
        "refused_creations": len(books.refused_creations),
        "rows_listed": rows,
        "problems": problems[:20],
    }
    print(json.dumps(report, indent=1))
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
