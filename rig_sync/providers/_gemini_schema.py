"""JSON Schema -> Gemini's schema dialect (an OpenAPI 3.0 subset) for function declarations.

Gemini rejects keywords outside its subset, so a tool schema made for OpenAI (`$defs`/`$ref`,
`additionalProperties`, `"type": ["string", "null"]`, `const`, tuple `prefixItems`) is rewritten:
references are inlined, nullable unions become `nullable: true`, annotations Gemini does not know
are dropped. A keyword that would change what the model may send, and that Gemini cannot
express, raises `UnsupportedFeature` instead of being silently lost.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import UnsupportedFeature

__all__ = ["gemini_schema"]

# Kept as they are (after their sub-schemas are converted).
_KEEP = frozenset({
    "type", "format", "description", "nullable", "enum", "properties", "required", "items", "anyOf",
    "minItems", "maxItems", "minimum", "maximum", "minLength", "maxLength", "pattern", "title",
    "minProperties", "maxProperties", "propertyOrdering", "example",
})
# Annotations (or constraints Gemini cannot check anyway) whose loss does not change valid input.
_DROP = frozenset({
    "$schema", "$id", "$comment", "$defs", "definitions", "additionalProperties", "default", "examples",
    "uniqueItems", "readOnly", "writeOnly", "deprecated", "exclusiveMinimum", "exclusiveMaximum",
    "multipleOf", "contentEncoding", "contentMediaType",
})


def gemini_schema(schema: Mapping[str, Any], tool: str) -> dict[str, Any]:
    """`schema` in Gemini's dialect, or `UnsupportedFeature` naming the tool and the keyword."""
    defs = {**schema.get("definitions", {}), **schema.get("$defs", {})}
    return _convert(schema, _Context(tool, defs), "$", ())


class _Context:
    def __init__(self, tool: str, defs: Mapping[str, Any]) -> None:
        self.tool = tool
        self.defs = defs

    def refuse(self, path: str, why: str) -> UnsupportedFeature:
        return UnsupportedFeature(f"gemini: tool {self.tool!r} parameter schema at {path}: {why}")


def _convert(schema: Any, ctx: _Context, path: str, refs: tuple[str, ...]) -> dict[str, Any]:
    if schema is True or schema == {}:
        return {}
    if not isinstance(schema, Mapping):
        raise ctx.refuse(path, f"expected a schema object, got {schema!r}")
    if "$ref" in schema:
        return _inline_ref(schema, ctx, path, refs)
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _DROP:
            continue
        if key == "properties":
            out[key] = {name: _convert(sub, ctx, f"{path}.{name}", refs) for name, sub in value.items()}
        elif key == "items":
            if value is not False:  # `items: false` only closes a tuple (handled with prefixItems)
                out[key] = _convert(value, ctx, f"{path}[]", refs)
        elif key in ("anyOf", "oneOf"):
            out.update(_union([_convert(s, ctx, f"{path}|{i}", refs) for i, s in enumerate(value)]))
        elif key == "allOf":
            if len(value) != 1:
                raise ctx.refuse(path, "allOf with several schemas cannot be expressed; merge them")
            out.update(_convert(value[0], ctx, path, refs))
        elif key == "const":
            out["enum"] = [value]
        elif key == "prefixItems":
            out.update(_tuple(value, ctx, path, refs))
        elif key == "type" and isinstance(value, list):
            out.update(_type_list(value))
        elif key in _KEEP:
            out[key] = value
        else:
            raise ctx.refuse(path, f"the keyword {key!r} has no equivalent in Gemini's schema")
    if "enum" in out:
        out.update(_enum(out["enum"], ctx, path))
    return out


def _enum(values: list[Any], ctx: _Context, path: str) -> dict[str, Any]:
    """Gemini's enums hold strings only; a `None` among them becomes `nullable`."""
    real = [v for v in values if v is not None]
    if not all(isinstance(v, str) for v in real):
        raise ctx.refuse(path, f"enum values {real!r} are not all strings; Gemini's enums are strings only")
    out: dict[str, Any] = {"type": "string", "enum": real}
    if len(real) < len(values):
        out["nullable"] = True
    return out


def _inline_ref(schema: Mapping[str, Any], ctx: _Context, path: str, refs: tuple[str, ...]) -> dict[str, Any]:
    ref = schema["$ref"]
    name = ref.rpartition("/")[2] if isinstance(ref, str) and ref.startswith(("#/$defs/", "#/definitions/")) else None
    if name is None or name not in ctx.defs:
        raise ctx.refuse(path, f"cannot resolve $ref {ref!r} (only local #/$defs/… references are inlined)")
    if ref in refs:
        raise ctx.refuse(path, f"{ref!r} refers to itself; Gemini cannot describe recursive schemas")
    siblings = {k: v for k, v in schema.items() if k != "$ref"}
    return {**_convert(ctx.defs[name], ctx, path, (*refs, ref)), **_convert(siblings, ctx, path, refs)}


def _type_list(types: list[Any]) -> dict[str, Any]:
    """`["string", "null"]` -> nullable string; several real types -> anyOf."""
    real = [t for t in types if t != "null"]
    out: dict[str, Any] = {"nullable": True} if len(real) < len(types) else {}
    if len(real) == 1:
        out["type"] = real[0]
    elif real:
        out["anyOf"] = [{"type": t} for t in real]
    return out


def _union(options: list[dict[str, Any]]) -> dict[str, Any]:
    """anyOf with `{"type": "null"}` among the options -> the rest, nullable."""
    real = [o for o in options if o != {"type": "null"}]
    out: dict[str, Any] = {"nullable": True} if len(real) < len(options) else {}
    if len(real) == 1:
        return {**real[0], **out}
    return {**out, "anyOf": real}


def _tuple(items: list[Any], ctx: _Context, path: str, refs: tuple[str, ...]) -> dict[str, Any]:
    converted = [_convert(s, ctx, f"{path}[{i}]", refs) for i, s in enumerate(items)]
    if any(c != converted[0] for c in converted):
        raise ctx.refuse(path, "a tuple of mixed item types (prefixItems) cannot be expressed; use a list "
                               "or an object")
    return {"items": converted[0] if converted else {}, "minItems": len(items), "maxItems": len(items)}
