"""`assistant serve`: the installed models (students included) behind an OpenAI-compatible API.

Built on llama-cpp-python's own server: each registered model becomes a `ModelSettings`
entry under its name, and the server keeps one of them loaded at a time.
"""

from __future__ import annotations

import sys


def model_settings() -> list:
    from llama_cpp.server.settings import ModelSettings

    from assistant import registry
    from assistant.gguf_check import read_header
    from assistant.models import physical_cores

    out, kind = [], registry.merge_kind()
    for e in registry.all_models().values():
        read_header(e.path)
        model, lora = e.path, e.lora_path
        if lora and kind and e.source in ("shipped", "distill"):  # a student runs merged, as in the CLI
            from pathlib import Path

            from assistant.merge import merged

            try:
                model, lora = str(merged(Path(e.path), Path(lora), kind, e.name)), None
            except Exception as err:  # the adapter applied at run time always works
                print(f"note: {e.name} runs with its adapter applied at run time ({err})", file=sys.stderr)
        out.append(ModelSettings(
            model=model, model_alias=e.name, lora_path=lora, n_ctx=2048,
            n_threads=physical_cores(), verbose=False,
        ))
    return out


def make_app(host: str = "127.0.0.1", port: int = 8080):
    from llama_cpp.server.app import create_app
    from llama_cpp.server.settings import ServerSettings

    return create_app(server_settings=ServerSettings(host=host, port=port), model_settings=model_settings())


def serve(host: str, port: int) -> None:
    import uvicorn

    from assistant.models import _quiet_llama

    _quiet_llama()
    uvicorn.run(make_app(host, port), host=host, port=port, log_level="warning")
