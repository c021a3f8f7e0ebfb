"""Python types <-> JSON for tools and extractors: JSON Schema from type hints and docstrings,
validation of model-sent arguments against that schema, structuring with cattrs, and rendering
results as text.

Arguments are checked against the very schema the model was shown (so an error names what the
model got wrong in the model's own terms), then structured by cattrs into Python values. cattrs
alone is lax (`int("5")`, iterating a string as a list), hence the check first.

Pydantic models (an optional dependency) are described by pydantic's own schema, reshaped like an
attrs class's, and built with `model_validate_json`, so their validators and constraints run. pydantic
is never imported here: a class can only subclass `BaseModel` once pydantic is loaded.
"""

from __future__ import annotations

import collections.abc as cabc
import dataclasses
import enum
import inspect
import re
import sys
import types
import typing
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import attrs
import cattrs
from cattrs.errors import AttributeValidationNote, IterableValidationNote

from . import _json
from .errors import RigError

__all__ = [
    "SchemaError",
    "is_pydantic_model",
    "schema_of",
    "function_schema",
    "parse_docstring",
    "validate",
    "structure",
    "structure_problems",
    "to_text",
    "describe",
]

JSONSchema = dict[str, Any]


class SchemaError(RigError, TypeError):
    """A type (or function signature) cannot be described as JSON Schema."""


# --- docstrings ---------------------------------------------------------------------------------

_GOOGLE_PARAMS = re.compile(
    r"^(Args|Arguments|Parameters|Params|Keyword Args|Keyword Arguments|Attributes|Fields):\s*$", re.I)
_GOOGLE_OTHER = re.compile(
    r"^(Returns?|Yields?|Raises|Examples?|Notes?|Warnings?|See Also|References|Todo):\s*$", re.I)
_GOOGLE_ENTRY = re.compile(r"^\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_SPHINX_FIELD = re.compile(r"^:(\w+)(?:\s+([^:]*?))?\s*:\s*(.*)$")
_SPHINX_PARAM_KINDS = {"param", "parameter", "arg", "argument", "key", "keyword", "ivar", "var", "cvar"}


def parse_docstring(doc: str | None) -> tuple[str, dict[str, str]]:
    """(summary, {argument: description}) from a Google-style ("Args:") or Sphinx (":param x:")
    docstring. The summary is everything before the first section or field."""
    if not doc:
        return "", {}
    lines = inspect.cleandoc(doc).splitlines()
    summary: list[str] = []
    params: dict[str, list[str]] = {}
    current: list[str] | None = None  # the description being continued
    section: str | None = None  # "params", "other" or None (summary)
    entry_indent = -1
    for raw in lines:
        stripped = raw.strip()
        indent = len(raw) - len(raw.lstrip())
        if not raw.startswith((" ", "\t")) and stripped:
            field = _SPHINX_FIELD.match(stripped)
            if _GOOGLE_PARAMS.match(stripped):
                section, current, entry_indent = "params", None, -1
                continue
            if _GOOGLE_OTHER.match(stripped) or field:
                section, current = "other", None
                if field and field.group(1) in _SPHINX_PARAM_KINDS and field.group(2):
                    current = params.setdefault(field.group(2).split()[-1], [])
                    current.append(field.group(3))
                continue
        if section is None:
            summary.append(raw)
        elif not stripped:
            continue
        elif section == "params" and indent > 0:
            entry = _GOOGLE_ENTRY.match(stripped)
            if entry and (entry_indent < 0 or indent <= entry_indent):
                entry_indent = indent
                current = params.setdefault(entry.group(1), [])
                current.append(entry.group(2))
            elif current is not None:
                current.append(stripped)
        elif current is not None and indent > 0:
            current.append(stripped)  # continuation of a Sphinx field
        else:
            section, current = "other", None
    described = {name: " ".join(p for p in parts if p).strip() for name, parts in params.items()}
    return "\n".join(summary).strip(), {k: v for k, v in described.items() if v}


def _own_doc(cls: type) -> str | None:
    """The docstring written on `cls` itself (not inherited, not dataclass's generated signature)."""
    doc = cls.__dict__.get("__doc__")
    if not isinstance(doc, str) or doc.startswith(f"{cls.__name__}("):
        return None
    return doc


# --- schema ---------------------------------------------------------------------------------------

_PRIMITIVES: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean",
                               type(None): "null", None: "null"}
_SEQUENCES = {list, tuple, set, frozenset, cabc.Sequence, cabc.MutableSequence, cabc.Set, cabc.MutableSet,
              cabc.Collection, cabc.Iterable}
_MAPPINGS = {dict, cabc.Mapping, cabc.MutableMapping}


def _is_union(tp: Any) -> bool:
    return get_origin(tp) in (Union, types.UnionType)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def _enum_schema(values: list[Any]) -> JSONSchema:
    kinds = sorted({_json_type(v) for v in values})
    schema: JSONSchema = {"type": kinds[0] if len(kinds) == 1 else kinds} if kinds else {}
    schema["enum"] = values
    return schema


def _json_default(value: Any) -> tuple[bool, Any]:
    """(True, value) when a default can be shown to the model as JSON."""
    if isinstance(value, enum.Enum):
        value = value.value
    if value is None or isinstance(value, (str, int, float, bool)):
        return True, value
    return False, None


def is_pydantic_model(tp: Any) -> bool:
    """Whether `tp` is a pydantic v2 model class; never imports pydantic to find out."""
    main = sys.modules.get("pydantic.main")  # loaded before any BaseModel subclass can exist
    base = getattr(main, "BaseModel", None)
    return base is not None and isinstance(tp, type) and issubclass(tp, base)


def schema_of(tp: Any, description: str | None = None) -> JSONSchema:
    """The JSON Schema of a type hint: str, int, float, bool, None, Optional/Union, list, tuple,
    set, dict, Literal, Enum, Any, Annotated (a str in it is a description), attrs classes,
    dataclasses and pydantic models (nested). Anything else raises `SchemaError`."""
    schema = _schema(tp, ())
    if description:
        schema = {**schema, "description": description}
    return schema


def _schema(tp: Any, seen: tuple[type, ...]) -> JSONSchema:
    origin, args = get_origin(tp), get_args(tp)
    if origin is Annotated:
        schema = _schema(args[0], seen)
        notes = [a for a in args[1:] if isinstance(a, str)]
        return {**schema, "description": " ".join(notes)} if notes else schema
    if tp is Any or tp is object:
        return {}
    if tp in _PRIMITIVES:
        return {"type": _PRIMITIVES[tp]}
    if origin is Literal:
        return _enum_schema(list(args))
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        schema = _enum_schema([m.value for m in tp])
        doc = _own_doc(tp)
        return {**schema, "description": inspect.cleandoc(doc)} if doc else schema
    if _is_union(tp):
        options = [_schema(a, seen) for a in args]
        if all(set(o) == {"type"} and isinstance(o["type"], str) for o in options):
            return {"type": [o["type"] for o in options]}
        return {"anyOf": options}
    if tp in _SEQUENCES or origin in _SEQUENCES:
        return _array_schema(origin or tp, args, seen)
    if tp in _MAPPINGS or origin in _MAPPINGS:
        if args and args[0] not in (str, Any):
            raise SchemaError(f"JSON object keys are strings; cannot describe {tp!r}")
        return {"type": "object", "additionalProperties": _schema(args[1], seen)} if args else {"type": "object"}
    if isinstance(tp, type) and (attrs.has(tp) or dataclasses.is_dataclass(tp)):
        if tp in seen:
            raise SchemaError(f"{tp.__name__} refers to itself; recursive types cannot be described for a model")
        return _class_schema(tp, (*seen, tp))
    if is_pydantic_model(tp):
        return _pydantic_schema(tp)
    raise SchemaError(
        f"cannot describe {tp!r} as JSON Schema; use str, int, float, bool, None, list, dict, "
        "Literal, Enum, Optional/Union, or an attrs class, dataclass or pydantic model of those"
    )


def _array_schema(origin: Any, args: tuple[Any, ...], seen: tuple[type, ...]) -> JSONSchema:
    schema: JSONSchema = {"type": "array"}
    if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
        if args == ((),):  # tuple[()]
            return {**schema, "maxItems": 0}
        items = [_schema(a, seen) for a in args]
        return {**schema, "prefixItems": items, "items": False, "minItems": len(items), "maxItems": len(items)}
    if args:
        schema["items"] = _schema(args[0], seen)
    if origin in (set, frozenset, cabc.Set, cabc.MutableSet):
        schema["uniqueItems"] = True
    return schema


@attrs.frozen
class _Field:
    name: str
    type: Any
    required: bool
    default: Any = None
    description: str | None = None


def _class_fields(cls: type) -> list[_Field]:
    try:
        hints = typing.get_type_hints(cls, include_extras=True)
    except Exception as exc:  # any failure to resolve names is the same problem
        raise SchemaError(f"cannot resolve the type hints of {cls.__name__}: {exc}") from exc
    docs = parse_docstring(_own_doc(cls))[1]
    fields: list[_Field] = []
    if attrs.has(cls):
        for a in attrs.fields(cls):
            if not a.init:
                continue
            default = a.default
            if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
                required, default = False, attrs.NOTHING
            else:
                required = default is attrs.NOTHING
            fields.append(_Field(a.name, hints.get(a.name, a.type or Any), required, default,
                                 a.metadata.get("description") or docs.get(a.name)))
    else:
        for f in dataclasses.fields(cls):
            if not f.init:
                continue
            has_default = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
            default = f.default if f.default is not dataclasses.MISSING else attrs.NOTHING
            fields.append(_Field(f.name, hints.get(f.name, Any), not has_default, default,
                                 f.metadata.get("description") or docs.get(f.name)))
    return fields


def _object_schema(fields: list[_Field], seen: tuple[type, ...]) -> JSONSchema:
    properties: dict[str, JSONSchema] = {}
    for f in fields:
        prop = _schema(f.type, seen)
        if f.description:  # the field's own words beat its type's generic description
            prop = {**prop, "description": f.description}
        if not f.required and f.default is not attrs.NOTHING:
            shown, value = _json_default(f.default)
            if shown:
                prop = {**prop, "default": value}
        properties[f.name] = prop
    return {
        "type": "object",
        "properties": properties,
        "required": [f.name for f in fields if f.required],
        "additionalProperties": False,
    }


def _class_schema(cls: type, seen: tuple[type, ...]) -> JSONSchema:
    schema = _object_schema(_class_fields(cls), seen)
    doc = parse_docstring(_own_doc(cls))[0]
    return {**schema, "description": doc} if doc else schema


def _pydantic_schema(cls: Any) -> JSONSchema:
    """pydantic's schema of `cls` (validation mode: aliases, constraints, `Field` descriptions),
    reshaped like `_class_schema`'s so that every class reads alike to a model and to `validate`."""
    try:
        raw: JSONSchema = cls.model_json_schema()
    except Exception as exc:  # pydantic's own errors (PydanticInvalidForJsonSchema, …) say which field
        raise SchemaError(f"pydantic cannot describe {cls.__name__} as JSON Schema: {exc}") from exc
    return _reshape(raw, raw.get("$defs", {}), ())


_SCHEMA_LISTS = {"anyOf", "oneOf", "allOf", "prefixItems"}
_SCHEMA_VALUES = {"items", "additionalProperties", "not"}
_DROPPED = {"title", "$defs", "discriminator"}  # noise to a model, or pointing into the dropped $defs


def _reshape(node: JSONSchema, defs: Mapping[str, JSONSchema], seen: tuple[str, ...]) -> JSONSchema:
    """Inline `$ref`s (nested classes are inlined for attrs too), drop titles, `const` -> `enum`,
    `oneOf` -> `anyOf`, a union of bare types -> a type list, `required` and closed
    `additionalProperties` on objects, a docstring's "Attributes:" as property descriptions."""
    ref = node.get("$ref")
    allof = node.get("allOf")
    if ref is None and isinstance(allof, list) and len(allof) == 1:  # {"allOf": [{"$ref": …}], "description": …}
        rest = {k: v for k, v in node.items() if k != "allOf"}
        return {**_reshape(allof[0], defs, seen), **_reshape(rest, defs, seen)}
    if ref is not None:
        name = str(ref).rpartition("/")[2]
        if name in seen:
            raise SchemaError(f"{name} refers to itself; recursive types cannot be described for a model")
        if not str(ref).startswith("#/$defs/") or name not in defs:
            raise SchemaError(f"cannot resolve {ref!r} in a pydantic schema (only local #/$defs/… references)")
        rest = {k: v for k, v in node.items() if k != "$ref"}
        return {**_reshape(defs[name], defs, (*seen, name)), **_reshape(rest, defs, seen)}  # the field's words win
    out: JSONSchema = {}
    for key, value in node.items():
        if key in _DROPPED:
            continue
        if key == "properties":
            value = {name: _reshape(prop, defs, seen) for name, prop in value.items()}
        elif key in _SCHEMA_LISTS:
            value = [_reshape(option, defs, seen) for option in value]
        elif key in _SCHEMA_VALUES and isinstance(value, dict):
            value = _reshape(value, defs, seen)
        elif key == "const":
            key, value = "enum", [value]
        elif key == "default":
            shown, value = _json_default(value)
            if not shown:
                continue
        out["anyOf" if key == "oneOf" else key] = value
    options = out.get("anyOf")
    if options and all(set(o) == {"type"} and isinstance(o["type"], str) for o in options):
        del out["anyOf"]
        out["type"] = [o["type"] for o in options]
    if "properties" in out:
        out.setdefault("required", [])
        out.setdefault("additionalProperties", False)  # extra="allow" says True itself
        summary, docs = parse_docstring(out.pop("description", None))
        for name, prop in out["properties"].items():
            if name in docs and "description" not in prop:  # `Field(description=…)` wins, as metadata does
                out["properties"][name] = {**prop, "description": docs[name]}
        if summary:
            out["description"] = summary
    return out


@attrs.frozen
class FunctionSignature:
    """What a tool needs of a function: its summary, parameter schema, and how to call it."""

    summary: str
    parameters: JSONSchema
    fields: tuple[_Field, ...]
    positional: tuple[str, ...]  # positional-only parameters, passed by position


def function_schema(fn: Callable[..., Any]) -> FunctionSignature:
    """Describe `fn`'s parameters (from its type hints and docstring) as a JSON Schema object."""
    try:
        signature = inspect.signature(fn)
        hints = typing.get_type_hints(fn, include_extras=True)
    except (TypeError, ValueError, NameError) as exc:
        raise SchemaError(f"cannot read the signature of {fn!r}: {exc}") from exc
    summary, docs = parse_docstring(inspect.getdoc(fn))
    fields: list[_Field] = []
    positional: list[str] = []
    for name, param in signature.parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise SchemaError(f"{fn.__name__}: *args/**kwargs cannot be described to a model; name each parameter")
        if name not in hints:
            raise SchemaError(f"{fn.__name__}: parameter {name!r} needs a type annotation")
        required = param.default is param.empty
        fields.append(_Field(name, hints[name], required, attrs.NOTHING if required else param.default,
                             docs.get(name)))
        if param.kind is param.POSITIONAL_ONLY:
            positional.append(name)
    return FunctionSignature(summary, _object_schema(fields, ()), tuple(fields), tuple(positional))


# --- validation -----------------------------------------------------------------------------------


def describe(schema: JSONSchema) -> str:
    """A short human name for what a schema accepts ("integer", "one of 'a', 'b'", …)."""
    if "enum" in schema:
        return "one of " + ", ".join(repr(v) for v in schema["enum"])
    if "anyOf" in schema:
        return " or ".join(describe(s) for s in schema["anyOf"])
    kind = schema.get("type")
    if isinstance(kind, list):
        return " or ".join(kind)
    return kind or "any value"


def _type_ok(value: Any, kind: str) -> bool:
    actual = _json_type(value)
    if kind == "number":
        return actual in ("integer", "number")
    if kind == "integer":
        return actual == "integer" or (actual == "number" and float(value).is_integer())
    return actual == kind


def _same(a: Any, b: Any) -> bool:
    return a == b and isinstance(a, bool) == isinstance(b, bool)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def validate(value: Any, schema: JSONSchema, path: str = "$") -> list[str]:
    """Every way `value` breaks `schema` (the subset `schema_of` writes), as "path: problem"."""
    if "anyOf" in schema:
        if any(not validate(value, option, path) for option in schema["anyOf"]):
            return []
        return [f"{path}: expected {describe(schema)}, got {_json_type(value)} {_show(value)}"]
    if "enum" in schema:
        if any(_same(value, e) for e in schema["enum"]):
            return []
        return [f"{path}: expected {describe(schema)}, got {_show(value)}"]
    kind = schema.get("type")
    if kind is not None:
        kinds = kind if isinstance(kind, list) else [kind]
        matched = next((k for k in kinds if _type_ok(value, k)), None)
        if matched is None:
            return [f"{path}: expected {describe(schema)}, got {_json_type(value)} {_show(value)}"]
        if matched == "object":
            return _validate_object(value, schema, path)
        if matched == "array":
            return _validate_array(value, schema, path)
    return []


def _validate_object(value: Mapping[str, Any], schema: JSONSchema, path: str) -> list[str]:
    problems: list[str] = []
    properties = schema.get("properties", {})
    for name in schema.get("required", ()):
        if name not in value:
            problems.append(f"{path}: missing required property {name!r}")
    extra = schema.get("additionalProperties", True)
    for name, item in value.items():
        where = f"{path}.{name}"
        if name in properties:
            problems.extend(validate(item, properties[name], where))
        elif extra is False:
            known = ", ".join(properties) or "none"
            problems.append(f"{path}: unexpected property {name!r} (known: {known})")
        elif isinstance(extra, dict):
            problems.extend(validate(item, extra, where))
    return problems


def _validate_array(value: list[Any], schema: JSONSchema, path: str) -> list[str]:
    problems: list[str] = []
    if "minItems" in schema and len(value) < schema["minItems"]:
        problems.append(f"{path}: expected at least {schema['minItems']} items, got {len(value)}")
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        problems.append(f"{path}: expected at most {schema['maxItems']} items, got {len(value)}")
    prefix = schema.get("prefixItems", [])
    items = schema.get("items", {})
    for i, item in enumerate(value):
        item_schema = prefix[i] if i < len(prefix) else items
        if isinstance(item_schema, dict):
            problems.extend(validate(item, item_schema, f"{path}[{i}]"))
    return problems


# --- structuring and rendering --------------------------------------------------------------------


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter()

    def union_hook(tp: Any) -> Callable[[Any, Any], Any]:
        # cattrs cannot pick a member of Union[int, str] by itself: take the first whose schema fits.
        members = [(a, _schema(a, ())) for a in get_args(tp)]

        def structure_union(value: Any, _: Any) -> Any:
            for member, schema in members:
                if not validate(value, schema):
                    return converter.structure(value, member)
            raise ValueError(f"{_show(value)} fits none of {tp!r}")

        return structure_union

    converter.register_structure_hook_factory(_is_union, union_hook)
    converter.register_structure_hook(type(None), lambda value, _: value)  # the null member of an Optional
    # pydantic models build and dump themselves, so their validators and serializers run. The value
    # came as JSON and is validated as JSON: a strict model takes "2024-01-31" for a date, "red" for an Enum.
    converter.register_structure_hook_func(is_pydantic_model,
                                           lambda value, cls: cls.model_validate_json(_json.dumps(value)))
    converter.register_unstructure_hook_func(is_pydantic_model, lambda value: value.model_dump(mode="json"))
    return converter


_converter = _make_converter()


def structure(value: Any, tp: Any) -> Any:
    """`value` (already validated against `schema_of(tp)`) as an instance of `tp`."""
    return _converter.structure(value, tp)


def structure_problems(exc: BaseException, path: str = "$") -> list[str]:
    """Why `structure` failed, as "path: problem" lines like `validate`'s: cattrs' nested errors
    by field and index, a pydantic ValidationError one line per error, anything else as is."""
    if isinstance(exc, cattrs.BaseValidationError):
        problems: list[str] = []
        for sub in exc.exceptions:
            where = path
            for note in getattr(sub, "__notes__", ()):
                if isinstance(note, AttributeValidationNote):
                    where = f"{path}.{note.name}"
                elif isinstance(note, IterableValidationNote):
                    where = f"{path}[{note.index!r}]"
            problems.extend(structure_problems(sub, where))
        return problems
    core = sys.modules.get("pydantic_core")
    if core is not None and isinstance(exc, core.ValidationError):
        return [f"{path}{_pointer(e['loc'])}: {e['msg']}" for e in exc.errors(include_url=False)]
    return [f"{path}: {exc}"]


def _pointer(loc: tuple[int | str, ...]) -> str:
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)


def to_text(value: Any) -> str:
    """A value as text for a model: str as is, attrs/dataclass/enum/pydantic unstructured, all as JSON."""
    if isinstance(value, str):
        return value
    plain = _converter.unstructure(value)
    try:
        return _json.dumps(plain).decode("utf-8")
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{type(value).__name__} value is not JSON-serialisable: {exc}") from None
