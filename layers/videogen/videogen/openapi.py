"""The API's OpenAPI 3.1 document, built from the pydantic models so it cannot drift from validation.

Served at GET /openapi.json; the fuzz tests (schemathesis) generate their requests from it.
"""

from __future__ import annotations

from typing import Any

from videogen.models import JobStatus, VideoRequest

_ERROR = {"$ref": "#/components/schemas/Error"}


def _response(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    body = {"description": description}
    if schema is not None:
        body["content"] = {"application/json": {"schema": schema}}  # type: ignore[assignment]
    return body


_SECRET = {
    "type": "object",
    "required": ["secret", "created_at"],
    "properties": {
        "secret": {"type": "string", "pattern": "^whsec_"},
        "created_at": {"type": "string"},
        "previous_secret_signs_until": {"type": ["string", "null"]},
    },
}


def openapi_document(server_url: str = "/") -> dict[str, Any]:
    request_schema = VideoRequest.model_json_schema(ref_template="#/components/schemas/{model}")
    definitions = request_schema.pop("$defs", {})
    job_id = {"name": "id", "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
    errors = {
        "400": _response("Unreadable body", _ERROR),
        "413": _response("Body too large", _ERROR),
        "422": _response("Invalid field, or a value the model cannot do", _ERROR),
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "videogen",
            "version": "1.0.0",
            "description": "Reference-to-video jobs on OpenRouter, delivered as MP4s to S3.",
        },
        "servers": [{"url": server_url}],
        "paths": {
            "/videos": {
                "post": {
                    "operationId": "createVideo",
                    "parameters": [
                        {
                            "name": "Idempotency-Key",
                            "in": "header",
                            "required": False,
                            "description": "The same key and request answer with the first attempt's job",
                            "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/VideoRequest"}}},
                    },
                    "responses": {"202": _response("Accepted", {"$ref": "#/components/schemas/Accepted"}), **errors},
                },
                "get": {
                    "operationId": "listVideos",
                    "parameters": [
                        {"name": "status", "in": "query", "schema": {"enum": [s.value for s in JobStatus]}},
                        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
                        {"name": "next_token", "in": "query", "schema": {"type": "string"}},
                    ],
                    "responses": {
                        "200": _response("The caller's jobs, newest first"),
                        "422": _response("Bad query", _ERROR),
                    },
                },
            },
            "/videos/{id}": {
                "get": {
                    "operationId": "getVideo",
                    "parameters": [job_id],
                    "responses": {"200": _response("The job"), "404": _response("No such job", _ERROR)},
                },
                "delete": {
                    "operationId": "cancelVideo",
                    "parameters": [job_id],
                    "responses": {
                        "200": _response("Cancelled"),
                        "404": _response("No such job", _ERROR),
                        "409": _response("Already ended", _ERROR),
                    },
                },
            },
            "/operator/videos/{id}": {
                "get": {
                    "operationId": "operatorGetVideo",
                    "parameters": [job_id],
                    "responses": {
                        "200": _response("The job, whoever owns it"),
                        "404": _response("No such job", _ERROR),
                    },
                },
            },
            "/operator/batches/{id}": {
                "get": {
                    "operationId": "operatorGetBatch",
                    "parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}],
                    "responses": {
                        "200": _response("The batch, whoever owns it"),
                        "404": _response("No such batch", _ERROR),
                    },
                },
            },
            # Batches (videogen.batches): a JSON array of requests (each may carry a client_ref) or JSON lines.
            "/batches": {
                "post": {
                    "operationId": "createBatch",
                    "parameters": [
                        {
                            "name": "Idempotency-Key",
                            "in": "header",
                            "required": False,
                            "description": "The same key and body answer with the first attempt's batch",
                            "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "array",
                                    "minItems": 1,
                                    "items": {"$ref": "#/components/schemas/VideoRequest"},
                                }
                            }
                        },
                    },
                    "responses": {"202": _response("Accepted: the batch and its counts so far"), **errors},
                }
            },
            "/batches/{id}": {
                "get": {
                    "operationId": "getBatch",
                    "parameters": [job_id],
                    "responses": {"200": _response("The batch"), "404": _response("No such batch", _ERROR)},
                },
                "delete": {
                    "operationId": "cancelBatch",
                    "parameters": [job_id],
                    "responses": {
                        "202": _response("Cancelling what has not ended"),
                        "404": _response("No such batch", _ERROR),
                        "409": _response("Already finished", _ERROR),
                    },
                },
            },
            "/batches/{id}/jobs": {
                "get": {
                    "operationId": "listBatchJobs",
                    "parameters": [
                        job_id,
                        {"name": "status", "in": "query", "schema": {"enum": [s.value for s in JobStatus]}},
                        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
                        {"name": "next_token", "in": "query", "schema": {"type": "string"}},
                    ],
                    "responses": {
                        "200": _response("The batch's jobs in line order"),
                        "404": _response("No such batch", _ERROR),
                        "422": _response("Bad query", _ERROR),
                    },
                },
            },
            "/models": {
                "get": {
                    "operationId": "listModels",
                    "responses": {"200": _response("Video models; `submission`: the credit breaker")},
                }
            },
            "/health": {
                "get": {
                    "operationId": "health",
                    "responses": {"200": _response("The service accepts jobs; `submission` is the credit breaker")},
                }
            },
            "/webhooks/secret": {
                "get": {
                    "operationId": "getWebhookSecret",
                    "responses": {"200": _response("The caller's signing secret (made on first use)", _SECRET)},
                }
            },
            "/webhooks/secret/rotate": {
                "post": {
                    "operationId": "rotateWebhookSecret",
                    "responses": {"200": _response("A new secret; the previous one signs too for 24 hours", _SECRET)},
                }
            },
        },
        "components": {
            "schemas": {
                "VideoRequest": request_schema,
                **definitions,
                "Accepted": {
                    "type": "object",
                    "required": ["id", "status"],
                    "properties": {"id": {"type": "string"}, "status": {"const": "queued"}},
                },
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["code", "message"],
                            "properties": {"code": {"type": "integer"}, "message": {"type": "string"}},
                        }
                    },
                },
            },
            "securitySchemes": {
                "sigv4": {
                    "type": "apiKey",
                    "name": "Authorization",
                    "in": "header",
                    "description": "AWS SigV4 (service execute-api)",
                }
            },
        },
    }
