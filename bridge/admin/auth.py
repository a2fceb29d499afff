"""Bearer tokens: who may read, who may operate.

Tokens come from `[admin] tokens` (token → role) and `[admin] token_files` (a file
holding one token → role; read once at start, so a secret need not sit in the config).
A presented token is compared with every known one in constant time (digests of equal
length, `hmac.compare_digest`, no early exit), so the answer's timing tells nothing
about how much of a token was right. Callers are named by a fingerprint (the first 12
hex digits of the token's SHA-256) in the audit log, never by the token.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from aiohttp import web

from bridge.errors import ConfigError

Role = Literal["read", "operate"]
_CHALLENGE = 'Bearer realm="hotline-bridge"'


@dataclass(frozen=True, slots=True)
class Caller:
    fingerprint: str
    role: Role


@dataclass(frozen=True, slots=True)
class Tokens:
    """The known tokens as (digest, caller) pairs."""

    known: tuple[tuple[bytes, Caller], ...]

    @classmethod
    def load(cls, tokens: Mapping[str, Role], token_files: Mapping[str, Role]) -> Tokens:
        """From the config; raises ConfigError for a token file that cannot be read or
        is empty."""
        pairs = dict(tokens)
        for path, role in token_files.items():
            try:
                token = Path(path).read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(f"[admin] token_files: cannot read {path}: {exc}") from exc
            if not token:
                raise ConfigError(f"[admin] token_files: {path} is empty")
            pairs[token] = role
        return cls(tuple((_digest(t), Caller(fingerprint(t), r)) for t, r in pairs.items()))

    def find(self, presented: str) -> Caller | None:
        digest = _digest(presented)
        found: Caller | None = None
        for known, caller in self.known:  # every one, whatever matched: constant time
            if hmac.compare_digest(digest, known):
                found = caller
        return found


def fingerprint(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:12]


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def authenticate(request: web.Request, tokens: Tokens) -> Caller:
    """The caller of `request`; raises ApiProblem 401 without a known bearer token."""
    from bridge.admin.api import ApiProblem

    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        raise ApiProblem(
            401,
            "unauthorized",
            "send Authorization: Bearer <token>",
            kind="unauthorized",
            headers={"WWW-Authenticate": _CHALLENGE},
        )
    caller = tokens.find(presented.strip())
    if caller is None:
        raise ApiProblem(
            401,
            "unauthorized",
            "the token is not one this node knows",
            kind="unauthorized",
            headers={"WWW-Authenticate": _CHALLENGE + ', error="invalid_token"'},
        )
    return caller
