"""The OpenAPI 3.1 document, generated from the endpoint table and the pydantic models — never written by hand.

Each endpoint's query model becomes its parameters, its answers' models the
components' schemas (pydantic's JSON Schema is 2020-12, which OpenAPI 3.1
takes as it is). Errors share the Problem schema; 401, 403 and 429 are on
every operation, since every one needs a token.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from hwdaemon import __version__
from hwdaemon.api.endpoints import Endpoint
from hwdaemon.api.models import Problem
from hwdaemon.api.views import API_PREFIX
from hwdaemon.export import FORMATS

REF_TEMPLATE = "#/components/schemas/{model}"
COMMON_ANSWERS = {
    400: "the request is malformed; `error` says which field",
    401: "no token, or not one of api.tokens",
    403: "the token lacks the scope",
    429: "over the token's rate limit; see Retry-After",
}


def openapi_document(table: list[Endpoint]) -> dict[str, Any]:
    models: set[type[BaseModel]] = {Problem}
    for endpoint in table:
        models.update(answer.model for answer in endpoint.answers.values() if answer.model is not None)
    _, definitions = models_json_schema(
        [(model, "serialization") for model in sorted(models, key=lambda model: model.__name__)],
        ref_template=REF_TEMPLATE,
    )
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in table:
        paths.setdefault(API_PREFIX + endpoint.path, {})[endpoint.method.lower()] = _operation(endpoint)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "hwdaemon",
            "version": __version__,
            "description": "Submit handwritten scans, follow their jobs and fetch their text in any format. See docs/api.md.",
        },
        "paths": paths,
        "components": {
            "schemas": definitions.get("$defs", {}),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }


def _operation(endpoint: Endpoint) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": endpoint.operation_id,
        "summary": endpoint.summary,
        "parameters": _path_parameters(endpoint) + _query_parameters(endpoint),
        "responses": {},
    }
    if endpoint.scope is not None:
        operation["description"] = f"Needs a token with the `{endpoint.scope}` scope (or `admin`)."
    if endpoint.body == "upload":
        operation["requestBody"] = _upload_body()
    for status, answer in sorted(endpoint.answers.items()):
        response: dict[str, Any] = {"description": answer.description}
        if answer.model is not None:
            response["content"] = {"application/json": {"schema": _ref(answer.model)}}
        elif answer.media_types:
            response["content"] = {
                media: {"schema": {"type": "string", "format": "binary"}} for media in answer.media_types
            }
        elif status >= 400:
            response["content"] = {"application/json": {"schema": _ref(Problem)}}
        operation["responses"][str(status)] = response
    for status, description in COMMON_ANSWERS.items():
        operation["responses"].setdefault(
            str(status), {"description": description, "content": {"application/json": {"schema": _ref(Problem)}}}
        )
    return operation


def _path_parameters(endpoint: Endpoint) -> list[dict[str, Any]]:
    parameters = []
    if "{id}" in endpoint.path:
        parameters.append({"name": "id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}})
    if "{format}" in endpoint.path:
        parameters.append({"name": "format", "in": "path", "required": True, "schema": {"enum": list(FORMATS)}})
    return parameters


def _query_parameters(endpoint: Endpoint) -> list[dict[str, Any]]:
    if endpoint.query is None:
        return []
    schema = endpoint.query.model_json_schema(ref_template=REF_TEMPLATE)
    required = set(schema.get("required", []))
    parameters = []
    for name, field_schema in schema["properties"].items():
        description = field_schema.pop("description", None)
        field_schema.pop("title", None)
        if field_schema.get("type") == "array":  # sent comma-separated: formats=txt,json
            field_schema = {"type": "string"}
        parameter: dict[str, Any] = {"name": name, "in": "query", "required": name in required, "schema": field_schema}
        if description:
            parameter["description"] = description
        parameters.append(parameter)
    return parameters


def _upload_body() -> dict[str, Any]:
    fields = {
        "file": {
            "type": "string",
            "format": "binary",
            "contentMediaType": "application/octet-stream",
            "description": "the scan",
        },
        "profile": {"type": "string"},
        "inbox": {"type": "string"},
        "formats": {"type": "string", "description": "comma-separated: txt,json"},
        "callback_url": {"type": "string"},
        "reprocess": {"type": "boolean"},
    }
    return {
        "required": True,
        "content": {
            "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": fields}},
            "application/octet-stream": {
                "schema": {"type": "string", "format": "binary", "contentMediaType": "application/octet-stream"}
            },
        },
    }


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF_TEMPLATE.format(model=model.__name__)}
