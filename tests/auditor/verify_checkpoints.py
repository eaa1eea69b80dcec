#!/usr/bin/env python3
"""Checks Exact's signed checkpoints against an exported log, without Exact's own code.

Usage: verify_checkpoints.py LOG.jsonl CHECKPOINTS.jsonl PUBLIC_KEY_HEX

LOG.jsonl is `exact store export --format jsonl` (check its chain with verify_chain.py first);
CHECKPOINTS.jsonl is the file the server appends its checkpoints to; PUBLIC_KEY_HEX is the key
`exact store checkpoint` printed, kept by the auditor. Needs Python's standard library and the
`cryptography` package (Ed25519). Exit 0 if every checkpoint is signed with that key and holds
the log's chain hash at its position; else 1, naming each one that does not: a log rewritten at
or before a checkpoint's position (its hashes recomputed, so that the chain alone verifies) or
cut short of it.
"""
import json
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

log_path, checkpoints_path, key_hex = sys.argv[1:4]
hashes = {}
for line in open(log_path, encoding="utf-8"):
    event = json.loads(line)
    hashes[event["position"]] = event["hash"]
key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(key_hex))

good, bad = 0, 0
for number, line in enumerate(open(checkpoints_path, encoding="utf-8"), 1):
    if not line.strip():
        continue
    checkpoint = json.loads(line)
    position, head, time = checkpoint["position"], checkpoint["head"], checkpoint["time"]
    message = f"exact checkpoint v1\nposition {position}\nhead {head}\ntime {time}\n".encode()
    problem = None
    if checkpoint["public_key"].lower() != key_hex.lower():
        problem = "signed with another key"
    else:
        try:
            key.verify(bytes.fromhex(checkpoint["signature"]), message)
        except InvalidSignature:
            problem = "the signature does not hold"
    if problem is None:
        if position not in hashes:
            problem = "the log does not reach this position: it was cut short"
        elif hashes[position] != head.lower():
            problem = "the log's hash there differs: it was rewritten at or before this position"
    if problem:
        bad += 1
        print(f"checkpoint line {number} (position {position}): {problem}")
    else:
        good += 1
if bad:
    sys.exit(1)
print(f"{good} checkpoints hold")
