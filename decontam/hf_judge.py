"""A judge that runs a causal LM in-process with transformers, no server needed.

It builds the same chat messages as `LLMJudge`, applies the model's chat template and
reads the first answer token's log-probabilities, so its verdicts and True-minus-False
margins are those a served copy of the model would return for a greedy first token
(up to numerics: bf16 on a GPU here, the server's own kernels there). Useful on a GPU
box without vLLM, and for the quality evaluation.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from decontam.errors import JudgeError
from decontam.judge import ERROR, FALSE, TRUE, JudgePair, Verdict, margin_from_top_logprobs
from decontam.prompts import messages

logger = logging.getLogger(__name__)


class TransformersJudge:
    """>>> judge = TransformersJudge("models/qwen", gguf_file="qwen.gguf")   # doctest: +SKIP"""

    def __init__(
        self,
        model_path: str,
        *,
        gguf_file: str | None = None,
        model_id: str | None = None,
        device: str | None = None,
        batch_size: int = 16,
        top_logprobs: int = 10,
        max_chars: int = 6000,
    ):
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as exc:
            raise JudgeError("TransformersJudge needs torch and transformers: pip install transformers") from exc
        self._torch = torch
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        kwargs: dict[str, Any] = {"gguf_file": gguf_file} if gguf_file else {}
        self.tokenizer = AutoTokenizer.from_pretrained(model_path, **kwargs)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        dtype = torch.bfloat16 if self.device == "cuda" else torch.float32
        self.model = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype, **kwargs).to(self.device).eval()
        self.model_id = model_id or (gguf_file or model_path).rsplit("/", 1)[-1]
        self.batch_size = batch_size
        self.top_logprobs = top_logprobs
        self.max_chars = max_chars

    def prompt(self, pair: JudgePair) -> str:
        msgs = messages(pair.data_type, pair.test_text, pair.train_text, max_chars=self.max_chars)
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        # A GGUF whose template did not come through: ChatML, which Qwen and SmolLM2 use.
        body = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in msgs)
        return body + "<|im_start|>assistant\n"

    def judge_many(self, pairs: Sequence[JudgePair]) -> list[Verdict]:
        torch = self._torch
        prompts = [self.prompt(p) for p in pairs]
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        out: list[Verdict | None] = [None] * len(prompts)
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            enc = self.tokenizer([prompts[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
            with torch.no_grad():
                logits = self.model(**enc).logits[:, -1, :].float()
            logp = torch.log_softmax(logits, dim=-1)
            values, ids = logp.topk(self.top_logprobs, dim=-1)
            for row, i in enumerate(idx):
                tokens = self.tokenizer.convert_ids_to_tokens(ids[row].tolist())
                top = dict(zip(tokens, values[row].tolist()))
                first = tokens[0].strip("Ġ▁ \n").lower()
                label = TRUE if first == "true" else FALSE if first == "false" else ERROR
                out[i] = Verdict(
                    label, margin=margin_from_top_logprobs([top]), answer=tokens[0], model=self.model_id,
                    data_type=pairs[i].data_type, error=None if label != ERROR else "unparseable_answer",
                )
        return out  # type: ignore[return-value]
