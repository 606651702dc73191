"""A small OpenID Connect provider for tests: discovery, JWKS, authorization and token endpoints, sign-out.

It holds real keys (generated with `cryptography`, from a per-process pool) and signs real JWTs; it checks PKCE (S256)
at its token endpoint as a real provider does. Serve `FakeIdP.make_app()` with `LiveServer` and set `issuer` to
the server's URL. Counters let tests assert how often the chatbot fetched what.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

CLIENT_ID = "chatbot-web-client"


#: Generating a 2048-bit RSA key takes 50 to 200 ms of CPU, and every FakeIdP needs one. Keys come from a pool
#: of `RSA_POOL` made once per test process and handed out in turn, so any `RSA_POOL` keys asked for one after
#: the other (all a test asks for: the provider's, a rotated one, an impostor's) are different keys.
RSA_POOL = 8
_rsa_keys: list[rsa.RSAPrivateKey] = []
_rsa_turn = itertools.count()


def _next_rsa_key() -> rsa.RSAPrivateKey:
    turn = next(_rsa_turn) % RSA_POOL
    if turn == len(_rsa_keys):
        _rsa_keys.append(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    return _rsa_keys[turn]


@dataclass
class SigningKey:
    kid: str
    algorithm: str
    private: Any

    @classmethod
    def rsa(cls, kid: str) -> SigningKey:
        return cls(kid, "RS256", _next_rsa_key())

    @classmethod
    def ec(cls, kid: str) -> SigningKey:
        return cls(kid, "ES256", ec.generate_private_key(ec.SECP256R1()))

    def jwk(self) -> dict[str, Any]:
        algorithm = jwt.algorithms.RSAAlgorithm if self.algorithm.startswith("RS") else jwt.algorithms.ECAlgorithm
        public = json.loads(algorithm.to_jwk(self.private.public_key()))
        return {**public, "kid": self.kid, "use": "sig", "alg": self.algorithm}

    def public_pem(self) -> bytes:
        return bytes(
            self.private.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )


@dataclass
class Grant:
    challenge: str
    redirect_uri: str
    nonce: str | None
    sub: str


@dataclass
class FakeIdP:
    issuer: str = ""
    client_id: str = CLIENT_ID
    keys: list[SigningKey] = field(default_factory=lambda: [SigningKey.rsa("key-1")])
    #: The claims every token of a sign-in carries besides the standard ones.
    user_claims: dict[str, Any] = field(
        default_factory=lambda: {"sub": "user-alice", "email": "alice@example.com", "cognito:groups": ["user"]}
    )
    #: While set, the discovery document answers this HTTP status instead (an outage).
    discovery_failure: int | None = None
    discovery_requests: int = 0
    jwks_requests: int = 0
    authorize_requests: list[dict[str, str]] = field(default_factory=list)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    logout_requests: list[dict[str, str]] = field(default_factory=list)
    grants: dict[str, Grant] = field(default_factory=dict)

    # Tokens -------------------------------------------------------------------------------------------

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": self.client_id, "iat": now, "exp": now + 3600, **self.user_claims}
        claims.update(overrides)
        return {name: value for name, value in claims.items() if value is not None}

    def sign(self, claims: dict[str, Any], key: SigningKey | None = None, kid: str | None = "default") -> str:
        key = key or self.keys[0]
        headers = {"kid": key.kid if kid == "default" else kid} if kid is not None else {}
        return jwt.encode(claims, key.private, algorithm=key.algorithm, headers=headers)

    def token(self, **overrides: Any) -> str:
        return self.sign(self.claims(**overrides))

    def rotate(self, key: SigningKey) -> None:
        """Publish only `key` from now on, as a provider does after rotating its keys."""
        self.keys = [key]

    # The provider's endpoints -------------------------------------------------------------------------

    def make_app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/.well-known/openid-configuration")
        async def discovery() -> Any:
            self.discovery_requests += 1
            if self.discovery_failure is not None:
                return JSONResponse({"message": "unavailable"}, self.discovery_failure)
            return {
                "issuer": self.issuer,
                "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token",
                "end_session_endpoint": f"{self.issuer}/logout",
                "jwks_uri": f"{self.issuer}/jwks.json",
                "response_types_supported": ["code"],
                "code_challenge_methods_supported": ["S256"],
            }

        @app.get("/jwks.json")
        async def jwks() -> dict[str, Any]:
            self.jwks_requests += 1
            return {"keys": [key.jwk() for key in self.keys]}

        @app.get("/authorize")
        async def authorize(request: Request) -> Response:
            query = dict(request.query_params)
            self.authorize_requests.append(query)
            problems = [
                name
                for name, ok in [
                    ("response_type", query.get("response_type") == "code"),
                    ("client_id", query.get("client_id") == self.client_id),
                    ("code_challenge_method", query.get("code_challenge_method") == "S256"),
                    ("code_challenge", len(query.get("code_challenge", "")) == 43),
                    ("redirect_uri", query.get("redirect_uri", "").endswith("/auth/callback")),
                    ("state", bool(query.get("state"))),
                ]
                if not ok
            ]
            if problems:
                return JSONResponse({"error": "invalid_request", "error_description": str(problems)}, 400)
            code = secrets.token_urlsafe(16)
            self.grants[code] = Grant(
                query["code_challenge"], query["redirect_uri"], query.get("nonce"), self.user_claims["sub"]
            )
            back = urlencode({"code": code, "state": query["state"]})
            return RedirectResponse(f"{query['redirect_uri']}?{back}", status_code=302)

        @app.post("/token")
        async def token(request: Request) -> Response:
            form = {name: values[0] for name, values in parse_qs((await request.body()).decode()).items()}
            self.token_requests.append(form)
            cors = {"Access-Control-Allow-Origin": request.headers.get("origin", "*")}
            grant = self.grants.pop(form.get("code", ""), None)
            verifier = form.get("code_verifier", "").encode()
            challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()).rstrip(b"=").decode()
            if (
                grant is None
                or form.get("grant_type") != "authorization_code"
                or form.get("client_id") != self.client_id
                or form.get("redirect_uri") != grant.redirect_uri
                or challenge != grant.challenge
            ):
                return JSONResponse({"error": "invalid_grant"}, 400, headers=cors)
            id_token = self.token(nonce=grant.nonce)
            access_token = self.token(aud=None, token_use="access", client_id=self.client_id)
            return JSONResponse(
                {"id_token": id_token, "access_token": access_token, "token_type": "Bearer", "expires_in": 3600},
                headers=cors,
            )

        @app.get("/logout")
        async def logout(request: Request) -> Response:
            query = dict(request.query_params)
            self.logout_requests.append(query)
            return RedirectResponse(query["post_logout_redirect_uri"], status_code=302)

        return app
