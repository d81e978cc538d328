"""Deterministic stand-ins for the models, for unit tests of decontam's logic only."""

from __future__ import annotations

import hashlib
import re

import numpy as np

from curate.models.llm import ChatResult


class BagOfWordsEmbedder:
    """Hashes words into a 256-d vector: texts sharing words get a high cosine."""

    model_id = "fake-bow"

    def embed(self, texts):
        out = np.zeros((len(texts), 256), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in re.findall(r"\w+", t.lower()):
                out[i, int(hashlib.md5(w.encode()).hexdigest(), 16) % 256] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        norms[norms == 0] = 1
        return out / norms


class ScriptedClient:
    """Answers judge requests with `answer(request) -> (text, top_logprobs)`; counts calls."""

    def __init__(self, answer, model="fake-judge", fail_after=None):
        self.answer = answer
        self.model = model
        self.calls = 0
        self.requests = []
        self.fail_after = fail_after

    def chat_many(self, reqs, on_result=None):
        results = []
        for i, r in enumerate(reqs):
            if self.fail_after is not None and self.calls >= self.fail_after:
                raise KeyboardInterrupt("simulated interruption")
            self.calls += 1
            self.requests.append(r)
            text, top = self.answer(r)
            res = ChatResult(text=text, top_logprobs=top, model=self.model,
                             error=None if text is not None else "server error")
            if on_result is not None:
                on_result(i, res)
            results.append(res)
        return results


def same_if_shared_word(word):
    """A fake judge: True (margin +3) when both fenced texts contain `word`, else False (-3)."""

    def answer(req):
        user = req.messages[-1]["content"]
        a = user.split("<text_a>")[1].split("</text_a>")[0]
        b = user.split("<text_b>")[1].split("</text_b>")[0]
        same = word in a and word in b
        top = [{"True": -0.05, "False": -3.05}] if same else [{"False": -0.05, "True": -3.05}]
        return ("True" if same else "False"), top

    return answer
