"""Chat models: one interface over llama-cpp-python (local GGUF) and OpenAI-compatible servers.

    model = load_model("summarize")          # a task name, a registered model name, a path, or openai:NAME
    for piece in model.stream([{"role": "user", "content": "Hi"}], max_tokens=64):
        print(piece, end="")

Local models stay loaded while their files fit RESIDENT_BYTES (the least recently used goes first),
and all llama.cpp work is serialized: two llama.cpp contexts at full threads slow each other many
times over on a small CPU. The same
`Llama` object is kept between calls, so the rendered system prompt's KV state is
reused (llama.cpp keeps the longest common token prefix of the previous call).
"""

from __future__ import annotations

import atexit
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Protocol

from assistant import AssistantError
from assistant.engine.templates import ChatTemplateRefused, render_chat  # noqa: F401  (re-exported: the models' API)


class PromptTooLong(AssistantError):
    def __init__(self, n_tokens: int, room: int) -> None:
        super().__init__(f"prompt is {n_tokens} tokens; the context holds {room} with room to answer")
        self.n_tokens, self.room = n_tokens, room


_LOCK = threading.RLock()  # serializes heavy work: loads and generation
_RESIDENT: dict[str, "LlamaCppModel"] = {}  # loaded models, least recently used first
# Models stay loaded while their files add up to this: the app's mail screen uses two students (one-line
# summaries, then a draft) and reloading one to switch cost a load and its whole prompt again (a draft
# took 1.2 s in the app against 0.7 s from the CLI). Two merged 135M students are about 290 MB; the 1.1 GB
# teacher still stands alone. Every use of a loaded model holds _LOCK, so none is freed mid-use.
RESIDENT_BYTES = 640 * 2**20


@atexit.register
def _unload_all() -> None:
    """Free llama.cpp models before the interpreter tears down the modules their destructors need."""
    for m in list(_RESIDENT.values()):
        m.unload()


class ChatModel(Protocol):
    """What the services need from a model."""

    name: str

    def stream(self, messages: list[dict], *, max_tokens: int = 256, temperature: float = 0.0,
               seed: int | None = None, stop: list[str] | None = None) -> Iterator[str]:
        """Yield the reply in pieces as they are generated.

        Raises:
            AssistantError: the model cannot be loaded or the backend failed.
        """
        ...


def complete(model: ChatModel, messages: list[dict], **kwargs) -> str:
    """The whole reply as one string, ended at the first sign of a loop (see tasks.loops)."""
    from assistant.engine.loops import stop_loops

    return "".join(stop_loops(model.stream(messages, **kwargs))).strip()


def physical_cores() -> int:
    import psutil

    return max(1, psutil.cpu_count(logical=False) or os.cpu_count() or 1)


def quiet_llama() -> None:
    """Silence llama.cpp's C-side log (it writes straight to stderr otherwise)."""
    import ctypes

    import llama_cpp

    if getattr(quiet_llama, "done", False):
        return

    @llama_cpp.llama_log_callback
    def _noop(level, text, user_data):  # noqa: ARG001
        return None

    quiet_llama.callback = _noop  # keep a reference: C holds the pointer
    llama_cpp.llama_log_set(_noop, ctypes.c_void_p(0))
    quiet_llama.done = True


@dataclass
class LlamaCppModel:
    """A GGUF model (optionally with a LoRA adapter GGUF) run on the CPU by llama-cpp-python."""

    name: str
    path: Path
    lora_path: Path | None = None
    merge: str | None = None  # fold the adapter into a cached merged GGUF of this type at load
    prompt_version: str | None = None  # the task prompt a student was trained on (its manifest)
    n_ctx: int = 2048
    n_threads: int | None = None
    _llm: object = None
    _template: str | None = None
    _add_bos: bool = False
    _end: frozenset = frozenset()  # end-of-generation token ids, found at load
    _bytes: int = 0  # the size of the files loaded (model and adapter), for the resident budget

    def load(self):
        from assistant.engine.gguf_check import read_header

        if self._llm is not None:
            return self._llm
        with _LOCK:
            if self._llm is not None:  # loaded by another thread meanwhile
                return self._llm
            info = read_header(self.path)
            if self.lora_path:
                read_header(self.lora_path)
            quiet_llama()
            import llama_cpp

            from assistant.engine.gguf_tools import run_files

            model_path, lora_path = run_files(self.path, self.lora_path, self.merge, self.name)
            try:
                self._llm = llama_cpp.Llama(
                    model_path=str(model_path), lora_path=str(lora_path) if lora_path else None,
                    n_ctx=self.n_ctx, n_threads=self.n_threads or physical_cores(),
                    n_batch=512, flash_attn=True, verbose=False,  # flash attention: +13% prompt, +16% decode on the 135M Q8_0
                )
            except Exception as e:  # llama.cpp says little; name the file
                raise AssistantError(f"{self.path}: llama.cpp could not load the model ({e})") from None
            self._template = info.metadata.get("tokenizer.chat_template") or _CHATML
            self._add_bos = bool(info.metadata.get("tokenizer.ggml.add_bos_token", False))
            self._end = self._end_tokens(self._llm)
            self._bytes = sum(p.stat().st_size for p in (model_path, lora_path) if p)
            for other in list(_RESIDENT.values()):  # the least recently used go first, until this one fits
                over = sum(m._bytes for m in _RESIDENT.values()) + self._bytes > RESIDENT_BYTES
                if other is not self and (over or other.name == self.name):  # (a name registered again: the old goes)
                    other.unload()
            _RESIDENT[self.name] = self
            return self._llm

    def _used(self) -> object:
        """The loaded Llama, marked most recently used. Callers hold _LOCK."""
        llm = self.load()
        _RESIDENT.pop(self.name, None)
        _RESIDENT[self.name] = self
        return llm

    def unload(self) -> None:
        with _LOCK:
            if self._llm is not None:
                self._llm.close()
                self._llm = None
            if _RESIDENT.get(self.name) is self:
                del _RESIDENT[self.name]

    def prompt_text(self, messages: list[dict]) -> str:
        self.load()
        return render_chat(self._template, messages)

    def tokens(self, messages: list[dict]) -> list[int]:
        with _LOCK:  # another thread's load must not free the model while it tokenizes
            llm = self.load()
            tokens = llm.tokenize(self.prompt_text(messages).encode(), add_bos=False, special=True)
            if self._add_bos and (not tokens or tokens[0] != llm.token_bos()):
                tokens = [llm.token_bos()] + tokens
            return tokens

    def stream(self, messages: list[dict], *, max_tokens: int = 256, temperature: float = 0.0,
               seed: int | None = None, stop: list[str] | None = None) -> Iterator[str]:
        with _LOCK:  # held from tokenizing to the last token: no other thread can unload the model mid-way
            llm = self._used()
            messages = trim_history(self, messages, max_tokens)
            tokens = self.tokens(messages)
            room = self.n_ctx - max_tokens
            if len(tokens) > room:
                raise PromptTooLong(len(tokens), room)
            yield from self._generate(llm, tokens, max_tokens, temperature, seed, stop or [])

    def _generate(self, llm, tokens: list[int], max_tokens: int, temperature: float, seed: int | None,
                  stop: list[str]) -> Iterator[str]:
        """Text pieces from llama.cpp's token generator, with the sampling `create_completion` uses.

        `create_completion` detokenizes the whole completion again at every token to look for
        stop strings; here each token is decoded once (UTF-8 split across tokens is held back
        by an incremental decoder) and only text that could begin a stop string waits.
        """
        import codecs
        import random

        llm.set_seed(seed if seed is not None else random.getrandbits(32))
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        held = ""
        gen = llm.generate(tokens, temp=temperature, top_k=40, top_p=0.95, min_p=0.05, repeat_penalty=1.05, reset=True)
        try:
            for n, tok in enumerate(gen, 1):
                if tok in self._end:
                    break
                held += decoder.decode(llm.detokenize([tok]))
                if stop:
                    hit = min((i for i in (held.find(s) for s in stop) if i >= 0), default=-1)
                    if hit >= 0:
                        held = held[:hit]
                        break
                    keep = max((k for s in stop for k in range(1, len(s)) if held.endswith(s[:k])), default=0)
                    out, held = held[: len(held) - keep], held[len(held) - keep:]
                else:
                    out, held = held, ""
                if out:
                    yield out
                if n >= max_tokens:
                    break
            held += decoder.decode(b"", final=True)
            if held:
                yield held
        finally:
            gen.close()

    @staticmethod
    def _end_tokens(llm) -> frozenset:
        """End-of-generation tokens: the model's EOS and the chat format's end markers."""
        ids = {llm.token_eos()}
        for marker in (b"<|im_end|>", b"<|endoftext|>", b"<|eot_id|>"):
            t = llm.tokenize(marker, add_bos=False, special=True)
            if len(t) == 1:
                ids.add(t[0])
        return frozenset(ids)

    def count_tokens(self, text: str) -> int:
        with _LOCK:
            return len(self.load().tokenize(text.encode(), add_bos=False, special=True))

    def generate_many(self, jobs, *, n_seq: int = 16, n_cells: int | None = None) -> Iterator[tuple[int, object]]:
        """complete(self, **job) for every job (a dict of `stream`'s arguments: messages, max_tokens,
        temperature, seed, stop), decoded together as parallel sequences (see engine.batched).

        Yields (index, text) as each job ends, or (index, PromptTooLong) for a prompt that cannot fit.
        Jobs are read as sequences free up: a generator of jobs is never held whole.
        """
        from assistant.engine.batched import complete_many

        with _LOCK:
            yield from complete_many(self, self._used(), jobs, n_seq, n_cells)


def trim_history(model, messages: list[dict], max_tokens: int) -> list[dict]:
    """Drop the oldest turns (never the system prompt or the last message) until the prompt fits the context."""
    if not hasattr(model, "prompt_text"):
        return messages
    msgs = list(messages)
    first = 1 if msgs and msgs[0]["role"] == "system" else 0
    while len(msgs) - first > 1 and model.count_tokens(model.prompt_text(msgs)) + max_tokens > model.n_ctx:
        del msgs[first]
    return msgs


_CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


BACKENDS = ("openai",)  # `openai:NAME` is NAME on an OpenAI-compatible server; local names never hold a ':'


@dataclass
class OpenAIModel:
    """Any OpenAI-compatible server (llama.cpp server, vLLM, Ollama, a cloud API)."""

    name: str
    base_url: str
    api_key: str | None = None

    def stream(self, messages: list[dict], *, max_tokens: int = 256, temperature: float = 0.0,
               seed: int | None = None, stop: list[str] | None = None) -> Iterator[str]:
        import openai

        client = openai.OpenAI(base_url=self.base_url, api_key=self.api_key or os.environ.get("OPENAI_API_KEY") or "none")
        try:
            response = client.chat.completions.create(
                model=self.name, messages=messages, max_tokens=max_tokens, temperature=temperature,
                seed=seed, stop=stop, stream=True,
            )
            for chunk in response:
                if chunk.choices and chunk.choices[0].delta.content:
                    yield chunk.choices[0].delta.content
        except openai.OpenAIError as e:
            raise AssistantError(f"{self.base_url}: {type(e).__name__}: {e}".splitlines()[0]) from None

    def count_tokens(self, text: str) -> int:
        return len(text) // 4 + 1
