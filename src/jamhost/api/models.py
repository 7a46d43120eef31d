"""Request bodies of the JSON endpoints, validated strictly (unknown fields refused).

Bodies are read with a cap and parsed by us (`bodies.read_json`), then validated here; the
schemas are published in OpenAPI through `openapi_body`.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from jamhost.api.times import parse_time_us
from jamhost.domain.refusals import BadRequest

U63 = 2**63 - 1
M = TypeVar("M", bound=BaseModel)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class AccountIn(Strict):
    name: str = Field(min_length=1, max_length=200)


class TokenIn(Strict):
    name: str = Field("token", max_length=200)
    scopes: list[str] | None = None
    # ISO 8601 or Unix seconds: strict mode would refuse a string for a datetime, and a
    # string is what most clients send, so the field takes both and `api/times` decides.
    expires_at: str | int | None = Field(None, examples=["2026-12-31T19:57:52Z", 1798747072])

    def expires_us(self) -> int | None:
        if self.expires_at is None:
            return None
        return parse_time_us(self.expires_at, "expires_at")


class ServiceIn(Strict):
    code: str | None = None
    balance: int | None = Field(None, ge=0, le=U63)
    min_item_gas: int = Field(0, ge=0, le=U63)
    min_memo_gas: int = Field(0, ge=0, le=U63)
    owner: str | None = Field(None, min_length=1, max_length=200)


class DelegateIn(Strict):
    accessor: str | None = Field(None, max_length=64)
    token: str | None = Field(None, max_length=512)
    role: str = "submitter"


class QuotaIn(Strict):
    pending_packages: int | None = Field(None, ge=0, le=U63)
    storage_bytes: int | None = Field(None, ge=0, le=U63)
    gas_per_hour: int | None = Field(None, ge=0, le=U63)


class CreditIn(Strict):
    amount: int = Field(ge=1, le=U63)


def validate(model: type[M], obj: Any) -> M:
    try:
        return model.model_validate(obj)
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] == "extra_forbidden":
            # The unknown name is the client's text (a pasted token, say): never echoed; the
            # answer names the fields this body takes instead.
            raise BadRequest("unknown field; this body takes: "
                             + ", ".join(model.model_fields)) from None
        loc = ".".join(str(p) for p in first["loc"])
        raise BadRequest(f"{loc}: {first['msg']}" if loc else first["msg"]) from None


def openapi_body(model: type[BaseModel] | None = None, *, media: str = "application/json",
                 binary: bool = False) -> dict[str, Any]:
    if binary:
        schema: dict[str, Any] = {"type": "string", "format": "binary"}
    else:
        assert model is not None
        schema = model.model_json_schema()
    return {"requestBody": {"required": True, "content": {media: {"schema": schema}}}}
