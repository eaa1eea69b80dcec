#!/usr/bin/env python3
"""Recomputes an Exact event log's hash chain from `exact store export --format jsonl`.

Needs nothing but Python's standard library: this is the check an auditor runs without trusting
Exact's own code. Exit 0 and a summary if the chain is intact, 1 naming the first bad position.
"""
import hashlib, json, sys

FIELDS = ("position", "stream", "version", "event_id", "type", "schema", "payload", "metadata")
prev, position = bytes(32), 0
for line in open(sys.argv[1], encoding="utf-8"):
    event = json.loads(line)
    position += 1
    text = json.dumps({k: event[k] for k in FIELDS}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(prev + text.encode("utf-8")).digest()
    if event["position"] != position or bytes.fromhex(event["prev_hash"]) != prev or digest.hex() != event["hash"]:
        sys.exit(f"chain broken at position {position}")
    prev = digest
print(f"{position} events, chain intact, head {prev.hex()}")
