#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Count meson's testlog.json: 'NAME: N passed, N failed, N skipped'."""
import json
import sys

name, path = sys.argv[1], sys.argv[2]
passed = failed = skipped = 0
try:
    with open(path) as f:
        for line in f:
            r = json.loads(line).get("result")
            if r in ("OK", "EXPECTEDFAIL"):
                passed += 1
            elif r == "SKIP":
                skipped += 1
            else:
                failed += 1
except OSError as e:
    print(f"{name}: no test log ({e}), 0 passed, 1 failed")
    sys.exit(0)
print(f"{name}: {passed} passed, {failed} failed, {skipped} skipped")
