"""A token server for registries with distribution's `auth: token`, shared by
test_registry_token.py (docker suite) and test_remote_cache.py (mount
suite): http.server on 127.0.0.1 giving RS256 JWTs signed by `openssl dgst`
with a key made by `openssl req -x509`, whose self-signed certificate is the
registry's rootcertbundle and rides in the token's `x5c` header.  It speaks
GET with Basic credentials and the OAuth2 POST (refresh_token, password)
and records what it was asked."""

import base64
import json
import secrets
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

USER = "sebsfs-token-pusher"
PASSWORD = "pw-3b81d0e2-not-in-any-log"
REFRESH_TOKEN = "rt-5c9a44f1-not-in-any-log"   # an identity token the token server knows
SERVICE = "sebsfs-test-registry"
ISSUER = "sebsfs-test-token-issuer"
REFUSED = "the token server refuses these credentials"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenServer:
    """A registry token server (distribution's token authentication
    specification) on 127.0.0.1: one user with a password; refresh tokens
    (identity tokens) are REFRESH_TOKEN and those it hands out with a token
    for `offline_token=true` (what `docker login` asks for) or a password
    grant.  requests lists what it was asked: dicts with method, grant
    (basic, password, refresh_token), user, offline, refresh_token,
    client_id, service, scopes and granted."""

    def __init__(self, base):
        self.key = base / "token-key.pem"
        self.cert = base / "token-cert.pem"
        r = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                            "-keyout", str(self.key), "-out", str(self.cert), "-days", "2",
                            "-subj", f"/CN={ISSUER}"], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        der = subprocess.run(["openssl", "x509", "-in", str(self.cert), "-outform", "DER"],
                             capture_output=True, timeout=60, check=True).stdout
        self.x5c = [base64.b64encode(der).decode()]
        self.requests = []
        self.refresh_tokens = {REFRESH_TOKEN}
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.realm = f"http://127.0.0.1:{self.httpd.server_address[1]}/token"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)

    def new_refresh_token(self):
        token = f"rt-{secrets.token_hex(12)}"
        with self.lock:
            self.refresh_tokens.add(token)
        return token

    def seen(self):
        with self.lock:
            return list(self.requests)

    def jwt(self, subject, scopes):
        """A token for subject granting the repository actions asked for in
        scopes ("repository:NAME:ACTIONS"), signed RS256 with the key."""
        now = int(time.time())
        access = []
        for scope in scopes:
            kind, rest = scope.split(":", 1)
            name, actions = rest.rsplit(":", 1)
            if kind == "repository":
                access.append({"type": kind, "name": name,
                               "actions": [a for a in actions.split(",") if a in ("pull", "push")]})
        header = {"typ": "JWT", "alg": "RS256", "x5c": self.x5c}
        claims = {"iss": ISSUER, "sub": subject, "aud": SERVICE, "exp": now + 600,
                  "nbf": now - 10, "iat": now, "jti": secrets.token_hex(8), "access": access}
        signing_input = (f"{b64url(json.dumps(header).encode())}."
                         f"{b64url(json.dumps(claims).encode())}")
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", str(self.key)],
                             input=signing_input.encode(), capture_output=True, timeout=60,
                             check=True).stdout
        return f"{signing_input}.{b64url(sig)}"

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def answer(self, code, doc):
                body = json.dumps(doc).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def grant(self, record, subject):
                """Records the request; a token for subject, or a refusal
                in the Docker Hub's words ({"details": ...}) when None."""
                record["granted"] = subject is not None
                with server.lock:
                    server.requests.append(record)
                if subject is None:
                    self.answer(401, {"details": REFUSED})
                    return None
                return {"access_token": server.jwt(subject, record["scopes"]),
                        "expires_in": 600,
                        "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}

            def do_GET(self):
                url = urllib.parse.urlsplit(self.path)
                query = urllib.parse.parse_qs(url.query)
                record = {"method": "GET", "grant": "basic", "user": None,
                          "offline": query.get("offline_token") == ["true"],
                          "service": query.get("service", [None])[0],
                          "scopes": query.get("scope", [])}
                user = password = None
                basic = self.headers.get("Authorization", "")
                if basic.startswith("Basic "):
                    user, _, password = base64.b64decode(basic[6:]).decode().partition(":")
                    record["user"] = user
                ok = url.path == "/token" and (user, password) == (USER, PASSWORD)
                doc = self.grant(record, USER if ok else None)
                if doc:
                    doc["token"] = doc["access_token"]
                    if record["offline"]:
                        doc["refresh_token"] = server.new_refresh_token()
                    self.answer(200, doc)

            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                form = urllib.parse.parse_qs(self.rfile.read(length).decode())
                field = lambda name: form.get(name, [None])[0]  # noqa: E731
                grant = field("grant_type")
                record = {"method": "POST", "grant": grant, "user": field("username"),
                          "refresh_token": field("refresh_token"), "client_id": field("client_id"),
                          "service": field("service"), "scopes": (field("scope") or "").split()}
                refresh = field("refresh_token")
                if grant == "password":
                    # for clients that force OAuth; dockerd 20.10 logs in
                    # with a GET and offline_token=true instead
                    ok = (field("username"), field("password")) == (USER, PASSWORD)
                    refresh = None
                elif grant == "refresh_token":
                    with server.lock:
                        ok = refresh in server.refresh_tokens
                else:
                    ok = False
                doc = self.grant(record, USER if ok and self.path == "/token" else None)
                if doc:
                    doc["refresh_token"] = refresh or server.new_refresh_token()
                    doc["scope"] = " ".join(record["scopes"])
                    self.answer(200, doc)

        return Handler

    def token_for(self, repo, actions="pull"):
        """A token fetched as a Docker client would (GET with Basic)."""
        query = urllib.parse.urlencode({"service": SERVICE, "scope": f"repository:{repo}:{actions}"})
        req = urllib.request.Request(f"{self.realm}?{query}")
        req.add_header("Authorization",
                       "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode())
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())["token"]
