"""Translation of pydantic's JSON Schema 2020-12 into OpenAPI 3.0 schema objects."""

from __future__ import annotations

from processor.api.openapi import to_openapi30


def test_null_unions_become_nullable() -> None:
    assert to_openapi30({"anyOf": [{"type": "string"}, {"type": "null"}], "default": None}) == {
        "type": "string",
        "nullable": True,
        "default": None,
    }
    assert to_openapi30({"anyOf": [{"$ref": "#/components/schemas/X"}, {"type": "null"}]}) == {
        "allOf": [{"$ref": "#/components/schemas/X"}],
        "nullable": True,
    }
    union = to_openapi30({"anyOf": [{"type": "string"}, {"type": "integer"}, {"type": "null"}]})
    assert union == {"anyOf": [{"type": "string"}, {"type": "integer"}], "nullable": True}
    assert to_openapi30({"type": "null"}) == {"nullable": True, "enum": [None]}


def test_const_tuples_and_exclusive_bounds_use_openapi_3_0_forms() -> None:
    assert to_openapi30({"const": True, "type": "boolean"}) == {"enum": [True], "type": "boolean"}
    box = {"type": "array", "prefixItems": [{"type": "integer"}] * 4, "minItems": 4, "maxItems": 4}
    assert to_openapi30(box) == {"type": "array", "items": {"type": "integer"}, "minItems": 4, "maxItems": 4}
    pair = to_openapi30({"type": "array", "prefixItems": [{"type": "string"}, {"type": "number"}]})
    assert pair["items"] == {"anyOf": [{"type": "string"}, {"type": "number"}]}
    assert to_openapi30({"type": "number", "exclusiveMinimum": 0}) == {
        "type": "number",
        "minimum": 0,
        "exclusiveMinimum": True,
    }


def test_nested_schemas_are_translated_and_property_names_left_alone() -> None:
    schema = {
        "type": "object",
        "properties": {
            "const": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
            "items": {"type": "array", "items": {"const": "x"}},
        },
        "additionalProperties": {"examples": ["a", "b"], "type": "string"},
        "description": "uses ``backticks``",
    }
    assert to_openapi30(schema) == {
        "type": "object",
        "properties": {
            "const": {"type": "integer", "nullable": True},
            "items": {"type": "array", "items": {"enum": ["x"]}},
        },
        "additionalProperties": {"example": "a", "type": "string"},
        "description": "uses `backticks`",
    }
