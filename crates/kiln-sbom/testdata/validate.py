"""Validates an SBOM against the vendored official schema.

usage: python3 validate.py spdx|cyclonedx FILE

Exits 0 when FILE is valid, 1 with every error printed otherwise. The
schemas and their sources are in schemas/README.md; bom-1.6 refers to
spdx.schema.json and jsf-0.82.schema.json by relative URL, which a local
registry resolves (nothing is fetched).
"""
import json
import pathlib
import sys

import jsonschema
from referencing import Registry, Resource

HERE = pathlib.Path(__file__).parent / "schemas"


def load(name):
    return json.loads((HERE / name).read_text())


def main():
    kind, path = sys.argv[1], sys.argv[2]
    doc = json.loads(pathlib.Path(path).read_text())
    if kind == "spdx":
        schema = load("spdx-2.3.schema.json")
        registry = Registry()
    elif kind == "cyclonedx":
        schema = load("bom-1.6.schema.json")
        resources = []
        for name in ["bom-1.6.schema.json", "spdx.schema.json", "jsf-0.82.schema.json"]:
            s = load(name)
            resources.append((s["$id"], Resource.from_contents(s)))
        registry = Registry().with_resources(resources)
    else:
        sys.exit(f"unknown kind {kind!r}")
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    v = cls(schema, registry=registry, format_checker=cls.FORMAT_CHECKER)
    errors = sorted(v.iter_errors(doc), key=lambda e: list(e.absolute_path))
    for e in errors:
        print(f"{'/'.join(map(str, e.absolute_path))}: {e.message}"[:500])
    sys.exit(1 if errors else 0)


main()
