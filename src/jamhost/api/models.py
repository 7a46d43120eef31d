"""Request bodies of the JSON endpoints, validated strictly (unknown fields refused).

Bodies are read with a cap and parsed by us (`bodies.read_json`), then validated here; the
schemas are published in OpenAPI through `openapi_body`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

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
    expires_at: datetime | int | None = None

    def expires_us(self) -> int | None:
        if self.expires_at is None:
            return None
        if isinstance(self.expires_at, int):  # unix seconds
            if not 0 <= self.expires_at < 2**40:
                raise BadRequest("expires_at is out of range")
            return self.expires_at * 1_000_000
        at = self.expires_at
        if at.tzinfo is None:
            at = at.replace(tzinfo=UTC)
        return int(at.timestamp() * 1_000_000)


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
