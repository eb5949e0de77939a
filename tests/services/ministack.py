"""AWS on loopback for the tests: ministack's S3, Lambda and API Gateway HTTP API, no Docker.

ministack runs a Python Lambda of runtime ``python3.*`` in a warm subprocess of its own
interpreter (its "local" executor, ``LAMBDA_EXECUTOR=local``, the default): the worker is
``sys.executable`` running ministack's own bootstrap, which imports the function's handler
with the code's directory first on ``sys.path``. The session starts ministack with this
virtualenv's interpreter, so a function's handler imports teledrop as installed here.

ministack pins botocore to one exact release, older than the one teledrop is tested
with, so it is not installed beside teledrop: at first use ``pip install --target`` puts
it and its dependencies in a cache outside the repository (``tests.services.lambda_rie.
cache_dir()``), and the server is started with that directory first on its ``sys.path``;
the Lambda workers it spawns do not inherit it and import teledrop's own botocore.

The server listens on a free loopback port (``BIND_HOST=127.0.0.1``) with S3, Lambda, API
Gateway (v1 and v2), IAM, STS and CloudWatch Logs, state in memory, and one root identity
whose secret is drawn per session. Its S3 verifies every SigV4 presigned URL (signature,
expiry, credentials: one altered or signed with another secret is a 403), which is what
the security tests rely on; it does not check header-signed requests (nor does it with
``AUTH=true``, which refuses only anonymous ones and needs real IAM roles for functions).
``TELEDROP_TEST_MINISTACK_URL`` names a running ministack to use instead (its root
credentials in ``TELEDROP_TEST_MINISTACK_ACCESS_KEY`` and ``..._SECRET``; its Lambda
workers must be able to import teledrop).

:meth:`Ministack.http_api` deploys a handler as a Lambda function behind an HTTP API
(``$default`` route and stage, ``AWS_PROXY`` integration, payload format 2.0) and returns an
:class:`HttpApi`, the client side of its invoke URL ``http://{id}.execute-api.localhost:
{port}/``. ``*.localhost`` does not resolve everywhere, so the client connects to the
server's address and names the API in ``Host``, as a resolver would have it; a program of
its own (``teledrop upload``) reaches the invoke URL through :class:`ApiProxy`, an HTTP
forward proxy that does the same.

Fixtures: ``ministack`` (session).
"""

from __future__ import annotations

import io
import os
import threading
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests

from tests.services import stop_process
from tests.services.lambda_rie import cache_dir, handler_env
from tests.services.seaweedfs import HOST, REGION, S3Endpoint, _die_with_parent, free_ports

URL_ENV = "TELEDROP_TEST_MINISTACK_URL"
ACCESS_KEY_ENV = "TELEDROP_TEST_MINISTACK_ACCESS_KEY"
SECRET_KEY_ENV = "TELEDROP_TEST_MINISTACK_SECRET"
MINISTACK = ("ministack", "1.5.33")
SERVICES = "s3,lambda,apigateway,iam,sts,logs"
#: The root identity ministack is started with (its secret is drawn per session).
ACCESS_KEY = "test"
#: The host name ministack matches execute-api requests against.
API_HOST = "localhost"
INSTALL_TIMEOUT = 600.0
START_TIMEOUT = 30.0
STOP_TIMEOUT = 5.0
#: Lambda's own default is 3 s; a cold teledrop plus a connection to PostgreSQL needs more.
FUNCTION_TIMEOUT = 60
FUNCTION_RUNTIME = f"python{sys.version_info.major}.{sys.version_info.minor}"


def ministack_site() -> Path:
    """A directory holding ministack and its pinned dependencies, installed at first use.
    Several sessions may install at once: each into a directory of its own, renamed into
    place by the first to finish."""
    name, version = MINISTACK
    target = cache_dir() / f"{name}-{version}-py{sys.version_info.major}{sys.version_info.minor}"
    if (target / name).is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    try:
        done = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             "--no-warn-conflicts", "--target", str(scratch), f"{name}=={version}"],
            capture_output=True, text=True, timeout=INSTALL_TIMEOUT)
        if done.returncode != 0:
            pytest.fail(f"pip install {name}=={version} failed ({done.returncode}): "
                        f"{done.stderr.strip()[-2000:]}")
        try:
            scratch.rename(target)
        except OSError:
            if not (target / name).is_dir():  # not another session's finished install
                raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def _server_command(site: Path) -> list[str]:
    # The cache comes first on ministack's own sys.path, not through PYTHONPATH, which
    # the Lambda workers would inherit.
    start = f"import sys; sys.path.insert(0, {str(site)!r}); from ministack.app import main; main()"
    return [sys.executable, "-c", start]


def function_zip(files: Mapping[str, str]) -> bytes:
    """A deployment package holding ``files`` (name -> text)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


@dataclass(frozen=True)
class HttpApi:
    """The client side of a deployed HTTP API."""

    api_id: str
    function_name: str
    address: str  # host:port ministack listens on

    @property
    def host(self) -> str:
        return f"{self.api_id}.execute-api.{API_HOST}:{self.address.rsplit(':', 1)[1]}"

    @property
    def url(self) -> str:
        """The invoke URL (what teledrop sees as its own base URL)."""
        return f"http://{self.host}/"

    def request(self, method: str, target: str, **kwargs: Any) -> requests.Response:
        """``method`` on ``target`` (a path under the API, or a URL on its host), through
        ministack's address with the API's name in ``Host``. Redirects are not followed:
        a download's ``Location`` leaves the API."""
        parts = urlsplit(target)
        if parts.netloc and parts.netloc != self.host:
            raise ValueError(f"{target} is not on {self.host}")
        url = urlunsplit(("http", self.address, parts.path or "/", parts.query, ""))
        headers = {"Host": self.host, **kwargs.pop("headers", {})}
        kwargs.setdefault("timeout", 60)
        return requests.request(method, url, headers=headers, allow_redirects=False, **kwargs)


#: Headers of one connection, never passed on by a proxy.
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "proxy-authorization",
               "te", "trailer", "transfer-encoding", "upgrade"}


class ApiProxy:
    """An HTTP forward proxy to the invoke URLs of ``api`` only: a client configured with
    ``HTTP_PROXY`` (and ``NO_PROXY`` for the bucket's loopback address) sends its requests
    for ``http://{id}.execute-api.localhost:{port}/...`` here, and they reach ministack
    with the API's name in ``Host``, as if the name resolved. Bodies are held whole: only
    the API's own small requests pass (the parts go to the bucket, not through here).
    A request for any other host is ``502``."""

    def __init__(self, api: HttpApi) -> None:
        proxy = self

        class Forward(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def forward(self) -> None:
                proxy.forwarded(self)

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = forward

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.api = api
        self.session = requests.Session()
        self.session.trust_env = False  # never a proxy of the caller's
        self.server = ThreadingHTTPServer((HOST, 0), Forward)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server.server_address[1]}"

    def __enter__(self) -> ApiProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.session.close()

    def forwarded(self, handler: BaseHTTPRequestHandler) -> None:
        target = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else None
        if target.netloc != self.api.host:
            handler.send_error(502, f"this proxy reaches {self.api.host} only")
            return
        headers = {name: value for name, value in handler.headers.items()
                   if name.lower() not in _HOP_BY_HOP}
        url = urlunsplit(("http", self.api.address, target.path or "/", target.query, ""))
        answer = self.session.request(handler.command, url, headers=headers, data=body,
                                      allow_redirects=False, timeout=120)
        content = answer.content
        handler.send_response(answer.status_code)
        for name, value in answer.raw.headers.items():
            if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(content)))
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(content)


class Ministack:
    """A ministack server: S3 for teledrop's storage, Lambda and HTTP APIs for its host."""

    def __init__(self, url: str, access_key: str, secret_key: str,
                 process: subprocess.Popen[bytes] | None = None, log_path: Path | None = None,
                 ) -> None:
        self.url = url
        self.s3 = S3Endpoint(url, access_key, secret_key)
        self.process = process
        self.log_path = log_path

    @classmethod
    def launch(cls, base_dir: Path) -> Ministack:
        site = ministack_site()
        (port,) = free_ports(1)
        secret = secrets.token_hex(16)
        env = handler_env({
            "GATEWAY_PORT": str(port), "BIND_HOST": HOST, "MINISTACK_HOST": API_HOST,
            "SERVICES": SERVICES, "LAMBDA_EXECUTOR": "local", "MINISTACK_REGION": REGION,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": secret,
            "S3_PERSIST": "0", "PERSIST_STATE": "0", "LOG_LEVEL": "WARNING",
            "TMPDIR": str(base_dir)})
        env.pop("AWS_SESSION_TOKEN", None)
        log_path = base_dir / "ministack.log"
        with open(log_path, "ab") as log:
            process = subprocess.Popen(_server_command(site), stdout=log,
                                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                       env=env, cwd=base_dir, preexec_fn=_die_with_parent)
        server = cls(f"http://{HOST}:{port}", ACCESS_KEY, secret, process, log_path)
        deadline = time.monotonic() + START_TIMEOUT
        while not server.healthy():
            if process.poll() is not None or time.monotonic() > deadline:
                server.stop()
                raise RuntimeError(f"ministack did not start within {START_TIMEOUT:g}s:\n"
                                   f"{server.log_tail()}")
            time.sleep(0.1)
        return server

    def healthy(self) -> bool:
        try:
            return requests.get(f"{self.url}/_ministack/health", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def client(self, service: str) -> Any:
        return self.s3.client() if service == "s3" else _aws_client(self.s3, service)

    def http_api(self, handler: str, env: Mapping[str, str],
                 files: Mapping[str, str] | None = None) -> HttpApi:
        """Deploy ``handler`` (``module.function``) with ``env`` as a Lambda function behind a
        new HTTP API; its deployment package holds ``files`` (handlers installed in this
        virtualenv need none)."""
        name = f"teledrop-{uuid.uuid4().hex[:12]}"
        functions = self.client("lambda")
        function = functions.create_function(
            FunctionName=name, Runtime=FUNCTION_RUNTIME, Handler=handler,
            Role=f"arn:aws:iam::000000000000:role/{name}", Timeout=FUNCTION_TIMEOUT,
            MemorySize=1024, Code={"ZipFile": function_zip(files or {"README": name})},
            Environment={"Variables": dict(env)})
        apis = self.client("apigatewayv2")
        api = apis.create_api(Name=name, ProtocolType="HTTP")
        integration = apis.create_integration(
            ApiId=api["ApiId"], IntegrationType="AWS_PROXY",
            IntegrationUri=function["FunctionArn"], PayloadFormatVersion="2.0")
        apis.create_route(ApiId=api["ApiId"], RouteKey="$default",
                          Target=f"integrations/{integration['IntegrationId']}")
        apis.create_stage(ApiId=api["ApiId"], StageName="$default", AutoDeploy=True)
        return HttpApi(api["ApiId"], name, urlsplit(self.url).netloc)

    def remove(self, api: HttpApi) -> None:
        self.client("apigatewayv2").delete_api(ApiId=api.api_id)
        self.client("lambda").delete_function(FunctionName=api.function_name)

    def stop(self) -> None:
        process, self.process = self.process, None
        stop_process(process, STOP_TIMEOUT)

    def log_tail(self, lines: int = 40) -> str:
        if self.log_path is None:
            return "(a server this session did not start)"
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


def _aws_client(endpoint: S3Endpoint, service: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        service, endpoint_url=endpoint.url, region_name=endpoint.region,
        aws_access_key_id=endpoint.access_key, aws_secret_access_key=endpoint.secret_key,
        config=Config(retries={"max_attempts": 1}))


@pytest.fixture(scope="session")
def ministack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ministack]:
    """``TELEDROP_TEST_MINISTACK_URL``, else a ministack this session started."""
    url = os.environ.get(URL_ENV)
    if url:
        yield Ministack(url, os.environ.get(ACCESS_KEY_ENV, ACCESS_KEY),
                        os.environ.get(SECRET_KEY_ENV, "test"))
        return
    server = Ministack.launch(tmp_path_factory.mktemp("ministack"))
    try:
        yield server
    finally:
        server.stop()

