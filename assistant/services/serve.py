"""`assistant serve`: every registered model behind the engine's OpenAI-compatible server.

    serve("127.0.0.1", 8080)      # blocks until Ctrl-C; assistant.engine.server says what it checks
"""

from __future__ import annotations


def serve(host: str, port: int, allow_remote: bool = False, api_key: str | None = None) -> None:
    from assistant.engine import server

    server.serve(host, port, allow_remote, api_key)
