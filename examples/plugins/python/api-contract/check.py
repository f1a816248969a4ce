"""api-contract: checks that a JSON API response still keeps its contract.

Config (all optional; at least `fields` or `non_empty` makes sense):
- `fields`: comma list of `path:type`; a path is dotted with array indexes as
  numbers, and `*` stands for every element of an array (`items.*.id:integer`).
  Types: string, number, integer, boolean, object, array, null, any; `type?`
  (e.g. `email:string?`) also accepts an absent value or null.
- `non_empty`: comma list of paths whose array, object or string must not be empty.
- `content_type`: the `content-type` the response must start with
  (default `application/json`; `any` to skip).
- `severity`: `fail` (default) or `warn`: what a broken contract makes the check.

Metrics: `fields_checked` (values looked at), `violations`.
"""

import json

import wit_world
from componentize_py_types import Err
from wit_world.imports import log
from wit_world.imports.types import Metric, Outcome, Response, Verdict

# Violations named in the message; the rest are counted.
SHOWN = 5

TYPES = {
    "string": lambda v: isinstance(v, str),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "null": lambda v: v is None,
    "any": lambda v: True,
}


class WitWorld(wit_world.WitWorld):
    def check(self, response: Response, config: list[tuple[str, str]]) -> Verdict:
        cfg = dict(config)
        severity = {"fail": Outcome.FAIL, "warn": Outcome.WARN}.get(cfg.get("severity", "fail"))
        if severity is None:
            raise Err(f"config `severity` must be fail or warn, not `{cfg['severity']}`")
        fields = parse_fields(cfg.get("fields", ""))
        non_empty = split_list(cfg.get("non_empty", ""))

        wanted_type = cfg.get("content_type", "application/json").strip().lower()
        got_type = header(response, "content-type")
        if wanted_type != "any" and not got_type.lower().startswith(wanted_type):
            return verdict(severity, f"content-type is `{got_type}`, not {wanted_type}", 0, 1)
        try:
            doc = json.loads(response.body)
        except ValueError as e:
            return verdict(severity, f"body is not JSON: {e}", 0, 1)

        checked = 0
        problems: list[str] = []
        for path, type_name, optional in fields:
            for where, value, found in lookup(doc, path):
                checked += 1
                if not found or value is None:
                    if optional:
                        continue
                    if not found:
                        problems.append(f"`{where}` is missing")
                        continue
                if not TYPES[type_name](value):
                    problems.append(f"`{where}` is {type_of(value)}, not {type_name}")
        for path in non_empty:
            for where, value, found in lookup(doc, path):
                checked += 1
                if not found:
                    problems.append(f"`{where}` is missing")
                elif isinstance(value, (list, dict, str)) and len(value) == 0:
                    problems.append(f"`{where}` is empty")

        if problems:
            log.log(log.Level.DEBUG, f"{len(problems)} contract violations")
            shown = "; ".join(problems[:SHOWN])
            more = f" (and {len(problems) - SHOWN} more)" if len(problems) > SHOWN else ""
            return verdict(severity, f"contract broken: {shown}{more}", checked, len(problems))
        return verdict(Outcome.PASS, f"contract kept ({checked} values checked)", checked, 0)


def parse_fields(text: str) -> list[tuple[str, str, bool]]:
    fields = []
    for item in split_list(text):
        path, sep, type_name = item.rpartition(":")
        if not sep or not path:
            raise Err(f"config `fields`: `{item}` is not `path:type`")
        optional = type_name.endswith("?")
        type_name = type_name.rstrip("?").strip().lower()
        if type_name not in TYPES:
            raise Err(f"config `fields`: unknown type `{type_name}` (one of {', '.join(TYPES)})")
        fields.append((path.strip(), type_name, optional))
    return fields


def split_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def lookup(doc, path: str):
    """Yields (concrete path, value, found) for `path`; `*` fans out over an array."""
    todo = [("", doc, path.split("."))]
    while todo:
        where, value, rest = todo.pop(0)
        if not rest:
            yield where or ".", value, True
            continue
        key, rest = rest[0], rest[1:]
        here = f"{where}.{key}" if where else key
        if key == "*":
            if not isinstance(value, list):
                yield here, None, False
                continue
            todo[0:0] = [(f"{where}.{i}" if where else str(i), item, rest) for i, item in enumerate(value)]
        elif isinstance(value, dict) and key in value:
            todo.insert(0, (here, value[key], rest))
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            todo.insert(0, (here, value[int(key)], rest))
        else:
            yield here, None, False


def type_of(value) -> str:
    for name in ("null", "boolean", "integer", "number", "string", "array", "object"):
        if TYPES[name](value):
            return name
    return type(value).__name__


def header(response: Response, name: str) -> str:
    return next((v for k, v in response.headers if k == name), "")


def verdict(outcome: Outcome, message: str, checked: int, violations: int) -> Verdict:
    return Verdict(
        outcome=outcome,
        message=message,
        metrics=[Metric("fields_checked", float(checked)), Metric("violations", float(violations))],
        labels=[],
    )
