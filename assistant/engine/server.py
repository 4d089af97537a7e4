"""`assistant serve`: the installed models (students included) behind an OpenAI-compatible API.

Built on llama-cpp-python's own server: each registered model becomes a `ModelSettings`
entry under its name, and the server keeps one of them loaded at a time.
"""

from __future__ import annotations

from pathlib import Path


def model_settings() -> list:
    from llama_cpp.server.settings import ModelSettings

    from assistant.engine import registry
    from assistant.engine.gguf_check import read_header
    from assistant.engine.gguf_tools import run_files
    from assistant.engine.models import physical_cores

    out, kind = [], registry.merge_kind()
    for e in registry.all_models().values():
        read_header(e.path)
        model, lora = run_files(Path(e.path), Path(e.lora_path) if e.lora_path else None,
                                kind if e.mergeable else None, e.name)  # a student runs merged, as in the CLI
        out.append(ModelSettings(
            model=str(model), model_alias=e.name, lora_path=str(lora) if lora else None, n_ctx=2048,
            n_threads=physical_cores(), verbose=False,
        ))
    return out


def make_app(host: str = "127.0.0.1", port: int = 8080):
    from llama_cpp.server.app import create_app
    from llama_cpp.server.settings import ServerSettings

    return create_app(server_settings=ServerSettings(host=host, port=port), model_settings=model_settings())


def serve(host: str, port: int) -> None:
    import uvicorn

    from assistant.engine.models import quiet_llama

    quiet_llama()
    uvicorn.run(make_app(host, port), host=host, port=port, log_level="warning")
