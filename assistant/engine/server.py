"""`assistant serve`: the installed models (students included) behind an OpenAI-compatible API.

    serve("127.0.0.1", 8080)                              # blocks until Ctrl-C
    serve("0.0.0.0", 8080, allow_remote=True, api_key=K)  # off loopback only with a key

Built on llama-cpp-python's server routes: each registered model becomes a `ModelSettings` entry
under its name, and one of them is loaded at a time. In front of the routes sits a guard:

- on loopback, only a loopback Host header and no foreign Origin (a web page cannot reach the
  server through DNS rebinding or a cross-site form); no CORS headers are ever sent;
- with an API key, `Authorization: Bearer KEY` on every route, /docs included;
- request bodies are checked before the routes see them: malformed JSON or wrong types get a
  400 with one line, a model that is not served a 404 (llama-cpp-python would answer with its
  default model under the requested name);
- one log line per request on stderr.

A registered model whose file is gone or whose chat template the bounded sandbox refuses is left
out with a warning; templates are rendered by `render_chat` (bounded) on every request too.
"""

from __future__ import annotations

import errno
import functools
import hmac
import ipaddress
import json
import re
import socket
import sys
import time
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

from assistant import AssistantError

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")
MAX_BODY = 8 << 20  # bytes; a prompt that fits a small model's context is a few tens of kB
PROBE = [{"role": "user", "content": "Hello"}]  # rendered through each model's chat template at startup
_HOST = re.compile(r"(\[[0-9a-f:.]+\]|[^:\[\]/@\s]+)(?::\d{1,5})?")
_COPILOT = "/v1/engines/copilot-codex/completions"  # llama-cpp-python answers it with the model "copilot-codex"


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, allow_remote: bool, api_key: str | None) -> None:
    """Refuse to listen off loopback unless asked to, and then only behind an API key."""
    if is_loopback(host):
        return
    if not allow_remote:
        raise AssistantError(f"{host} is not a loopback address: pass --allow-remote and --api-key KEY "
                             "(or ASSISTANT_API_KEY) to serve your models beyond this machine")
    if not api_key:
        raise AssistantError("--allow-remote needs an API key: --api-key KEY or ASSISTANT_API_KEY")


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to host:port, made before any model loads so a busy port fails at once."""
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
    except (OSError, UnicodeError) as e:
        raise AssistantError(f"cannot listen on {host}:{port}: {getattr(e, 'strerror', None) or e}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        sock.listen(128)
    except OSError as e:
        sock.close()
        why = "the port is in use" if e.errno == errno.EADDRINUSE else (e.strerror or str(e))
        raise AssistantError(f"cannot listen on {host}:{port}: {why}") from None
    return sock


def served_models(warn=_stderr) -> list:
    """One ModelSettings per registered model that can be served; the others are skipped with a warning."""
    from assistant.engine import registry

    out, kind = [], registry.merge_kind()
    for e in registry.all_models().values():
        try:
            out.append(_settings_for(e, kind))
        except (AssistantError, OSError) as err:
            warn(f"warning: not serving {e.name!r}: {err}".splitlines()[0])
    if not out:
        raise AssistantError("no model can be served (see the warnings above)")
    return out


def _settings_for(e, kind: str | None):
    from llama_cpp.server.settings import ModelSettings

    from assistant.engine import registry
    from assistant.engine.gguf_check import read_header
    from assistant.engine.gguf_tools import run_files
    from assistant.engine.models import physical_cores, render_chat

    registry.check_name(e.name)
    read_header(e.path)
    if e.lora_path:
        read_header(e.lora_path)
    model, lora = run_files(Path(e.path), Path(e.lora_path) if e.lora_path else None,
                            kind if e.mergeable else None, e.name)  # a student runs merged, as in the CLI
    template = read_header(model).metadata.get("tokenizer.chat_template")
    if template:
        render_chat(template, PROBE)  # refused, too slow or too big: not served
    return ModelSettings(model=str(model), model_alias=e.name, lora_path=str(lora) if lora else None, n_ctx=2048,
                         n_threads=physical_cores(), verbose=False)


class _BoundedFormatter:
    """llama-cpp-python's chat formatter protocol over `render_chat`: its own Jinja2ChatFormatter has no bounds."""

    def __init__(self, template: str, bos: str, eos: str, eos_id: int) -> None:
        self.template, self.bos, self.eos, self.eos_id = template, bos, eos, eos_id

    def __call__(self, *, messages, **context):
        from llama_cpp.llama import StoppingCriteriaList
        from llama_cpp.llama_chat_format import ChatFormatterResponse

        from assistant.engine.models import render_chat

        prompt = render_chat(self.template, messages, self.bos, self.eos,
                             strftime_now=lambda f: datetime.now().strftime(f), **context)
        stop = StoppingCriteriaList([lambda tokens, logits: tokens[-1] == self.eos_id])
        return ChatFormatterResponse(prompt=prompt, stop=[self.eos], stopping_criteria=stop, added_special=True)


def _bounded_proxy(models: list):
    """llama-cpp-python's LlamaProxy (one model loaded at a time), with each model's template bounded."""
    from llama_cpp.llama_chat_format import chat_formatter_to_chat_completion_handler
    from llama_cpp.server.model import LlamaProxy

    class BoundedProxy(LlamaProxy):
        @staticmethod
        def load_llama_from_model_settings(settings):
            llama = LlamaProxy.load_llama_from_model_settings(settings)
            template = llama.metadata.get("tokenizer.chat_template")
            if template:
                eos_id, bos_id = llama.token_eos(), llama.token_bos()
                text = llama._model.token_get_text  # as Llama.__init__ reads them for its own formatter
                formatter = _BoundedFormatter(template, text(bos_id) if bos_id != -1 else "",
                                              text(eos_id) if eos_id != -1 else "", eos_id)
                llama.chat_handler = chat_formatter_to_chat_completion_handler(formatter)
            return llama

    try:
        return BoundedProxy(models=models)
    except Exception as e:  # llama.cpp says little; name the file
        raise AssistantError(f"{models[0].model}: llama.cpp could not load the model ({e})".splitlines()[0]) from None


def make_app(models: list, host: str = "127.0.0.1", api_key: str | None = None, log=_stderr):
    """The ASGI app: llama-cpp-python's routes (without its allow-any-origin CORS) behind the guard."""
    from fastapi import FastAPI
    from llama_cpp.server import app as llama_app
    from llama_cpp.server.errors import RouteErrorHandler
    from llama_cpp.server.settings import ServerSettings

    from assistant import __version__

    llama_app.set_server_settings(ServerSettings(host=host, api_key=api_key or None))
    api = FastAPI(title="assistant serve", version=__version__)
    api.include_router(llama_app.router)
    for route in (*llama_app.router.routes, *api.routes):  # FastAPI may serve the router's own route objects
        if isinstance(route, RouteErrorHandler):
            route.error_message_wrapper = functools.partial(_route_error, route, log)
    llama_app._llama_proxy = _bounded_proxy(models)  # what llama_app.set_llama_proxy does, with our proxy
    hosts = None if not is_loopback(host) else {*LOOPBACK_NAMES, _bracketed(host.lower())}
    return _Guard(api, hosts, api_key or None, [m.model_alias for m in models], log)


def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def _route_error(route, log, error: Exception, body=None) -> tuple[int, dict]:
    """Replaces RouteErrorHandler.error_message_wrapper, which answers 500 with str(error) (tracebacks included)."""
    from fastapi.exceptions import RequestValidationError

    if isinstance(error, RequestValidationError):
        return 400, _error(_validation_message(error.errors()))
    if isinstance(error, AssistantError):  # a chat template refused or failed on these messages
        return 400, _error(str(error))
    if hasattr(body, "messages") or hasattr(body, "prompt"):
        for pattern, formatter in route.pattern_and_formatters.items():  # prompt longer than the context
            match = pattern.search(str(error))
            if match:
                return formatter(body, match)
    log(f"error: {type(error).__name__}: {error}".splitlines()[0])
    return 500, _error(f"internal error ({type(error).__name__}); see the server log", "internal_server_error")


def _error(message: str, kind: str = "invalid_request_error", code: str | None = None) -> dict:
    return {"message": message, "type": kind, "param": None, "code": code}


def _validation_message(errors: list) -> str:
    e = errors[0]
    where = ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body"
    return f"invalid request: {where}: {e.get('msg', 'invalid value')}"


class _Guard:
    """Pure ASGI middleware: host and origin check, API key, request-body check, one log line per request."""

    def __init__(self, app, hosts: set[str] | None, api_key: str | None, models: list[str], log) -> None:
        from llama_cpp.server import types

        self.app, self.hosts, self.api_key, self.log = app, hosts, api_key, log
        self.models, self.default = set(models), models[0]  # llama-cpp-python's default is the first
        self.bodies = {
            "/v1/completions": types.CreateCompletionRequest, _COPILOT: types.CreateCompletionRequest,
            "/v1/chat/completions": types.CreateChatCompletionRequest, "/v1/embeddings": types.CreateEmbeddingRequest,
            "/extras/tokenize": types.TokenizeInputRequest, "/extras/tokenize/count": types.TokenizeInputRequest,
            "/extras/detokenize": types.DetokenizeInputRequest,
        }

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start, status = time.perf_counter(), [0]

        async def logged(message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            refusal = self.refusal(scope)
            if refusal is None and scope["method"] == "POST" and scope["path"] in self.bodies:
                refusal, receive = await self.check_body(scope, receive)
            if refusal:
                await _reply(logged, *refusal)
            else:
                await self.app(scope, receive, logged)
        finally:
            ms = (time.perf_counter() - start) * 1000
            path = "".join(c if c.isprintable() else repr(c)[1:-1] for c in scope["path"][:200])
            self.log(f"{scope['method']} {path} {status[0] or '-'} {ms:.0f} ms")

    def refusal(self, scope) -> tuple | None:
        headers = {k.lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if self.hosts is not None:
            host = _host_name(headers.get(b"host", ""))
            if host not in self.hosts:
                return 400, "this server answers on loopback names only (Host: 127.0.0.1, localhost or [::1])"
            origin = headers.get(b"origin")
            if origin is not None and _host_name(urlsplit(origin).netloc) not in self.hosts:
                return 403, "cross-origin requests are not served"
        if self.api_key is not None:
            scheme, _, given = headers.get(b"authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(given.encode(), self.api_key.encode()):
                return 401, "missing or wrong API key (Authorization: Bearer KEY)", [(b"www-authenticate", b"Bearer")]
        return None

    async def check_body(self, scope, receive):
        """Read the body (bounded), check it, and hand the routes a receive that replays it."""
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return (400, "the client went away"), receive
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > MAX_BODY:
                return (413, f"request body over {MAX_BODY >> 20} MB"), receive
            if not message.get("more_body"):
                break
        refusal, body = self.checked_body(scope["path"], b"".join(chunks))
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()  # after the body: disconnects, as the routes expect
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        return refusal, replay

    def checked_body(self, path: str, body: bytes) -> tuple[tuple | None, bytes]:
        """(refusal or None, the body to pass on): a request without a model names the default one,
        so that the answer names it too (llama-cpp-python would put the model's file path there)."""
        from pydantic import ValidationError

        try:
            data = json.loads(body)
        except ValueError:  # JSONDecodeError and UnicodeDecodeError both are
            return (400, "request body is not valid JSON"), body
        if not isinstance(data, dict):
            return (400, "request body must be a JSON object"), body
        try:
            self.bodies[path].model_validate(data)
        except ValidationError as e:
            return (400, _validation_message(e.errors())), body
        model = "copilot-codex" if path == _COPILOT else data.get("model")
        if model is None:
            return None, json.dumps({**data, "model": self.default}).encode()
        if model not in self.models:
            return (404, f"no model named {model[:80]!r} here; GET /v1/models lists them", [], "model_not_found"), body
        return None, body


def _host_name(value: str) -> str:
    """The name part of a Host header or an origin's netloc ('' when it is not one)."""
    match = _HOST.fullmatch(value.strip().lower())
    return match.group(1) if match else ""


async def _reply(send, status: int, message: str, headers: list | None = None, code: str | None = None) -> None:
    body = json.dumps({"error": _error(message, code=code)}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


def serve(host: str, port: int, allow_remote: bool = False, api_key: str | None = None) -> None:
    """Check the exposure, take the port, load what can be served, say so on stderr, and serve until Ctrl-C."""
    import uvicorn

    from assistant.engine.models import quiet_llama

    api_key = api_key or None
    check_exposure(host, allow_remote, api_key)
    sock = listen(host, port)
    try:
        quiet_llama()
        models = served_models()
        app = make_app(models, host, api_key)
        where = f"http://{_bracketed(host)}:{port}/v1"
        _stderr(f"serving {len(models)} models at {where}{' (API key required)' if api_key else ''}; Ctrl-C stops")
        width = max(len(m.model_alias) for m in models)
        for m in models:
            _stderr(f"  {m.model_alias:{width}} → {m.model}{f' + {m.lora_path}' if m.lora_path else ''}")
        uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False)).run(sockets=[sock])
    finally:
        sock.close()
        _free_models()


def _free_models() -> None:
    """Close the loaded model now: left to the interpreter's teardown, Llama.__del__ can crash."""
    from llama_cpp.server import app as llama_app

    proxy, llama_app._llama_proxy = llama_app._llama_proxy, None
    if proxy is not None:
        proxy.free()
