"""Fails unless the wheel holds one import package, ``csflow``, with its folders inside it."""

from __future__ import annotations

import sys
import zipfile

names = zipfile.ZipFile(sys.argv[1]).namelist()
top = sorted({n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")})
inside = sorted({n.split("/")[1] for n in names if n.startswith("csflow/") and n.count("/") > 1})
print(f"top level: {top}; inside csflow: {inside}")
expected = {"actions", "adapters", "cli", "demo", "engine", "flows", "flowtest", "serve"}
if top != ["csflow"] or not expected <= set(inside):
    sys.exit(f"the wheel must hold only csflow/ with {sorted(expected)} inside it")
