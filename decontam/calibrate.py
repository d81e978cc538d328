"""Cut-offs fitted on a calibration split: for the judge margin and for the cosine.

A calibration is fitted on labelled pairs that are *not* the pairs being scored (for the
bundled evaluation: HumanEval items 100-163, MMLU rows past 100 and GSM8K, while the
scored pairs use the first 100 items). It is tied to the judge model and prompt version:
a calibration for another model does not apply, and an uncalibrated judge is advisory only.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from decontam.errors import CalibrationError
from decontam.prompts import PROMPT_VERSION


def fit_threshold(scores: Sequence[float], labels: Sequence[bool]) -> tuple[float, float]:
    """The cut-off (flag when score >= cut) that maximises F1, and that F1.

    Cut-offs sit midway between neighbouring distinct scores, so the fitted value does
    not hug one calibration example.

    >>> fit_threshold([0.1, 0.2, 0.8, 0.9], [False, False, True, True])
    (0.5, 1.0)
    """
    if len(scores) != len(labels) or not scores:
        raise CalibrationError("calibration needs as many labels as scores, and at least one of each")
    if not any(labels) or all(labels):
        raise CalibrationError("calibration needs both positive and negative pairs")
    pairs = sorted(zip(scores, labels), key=lambda p: -p[0])
    total_pos = sum(labels)
    best = (-1.0, pairs[0][0])
    tp = fp = 0
    for k, (score, label) in enumerate(pairs):
        tp += label
        fp += not label
        nxt = pairs[k + 1][0] if k + 1 < len(pairs) else None
        if nxt is not None and nxt == score:
            continue
        f1 = 2 * tp / (tp + fp + total_pos)
        cut = score if nxt is None else (score + nxt) / 2
        if f1 > best[0]:
            best = (f1, cut)
    return float(best[1]), float(best[0])


def auc(scores: Sequence[float], labels: Sequence[bool]) -> float:
    """Area under the ROC curve (ties count one half)."""
    pos = [s for s, y in zip(scores, labels) if y]
    neg = [s for s, y in zip(scores, labels) if not y]
    if not pos or not neg:
        return float("nan")
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def fit_logistic(features: Sequence[Sequence[float]], labels: Sequence[bool], *, l2: float = 1e-2, iters: int = 50) -> list[float]:
    """Weights (one per feature, then the bias) of an L2-regularised logistic regression (Newton steps).

    >>> w = fit_logistic([[0.1], [0.2], [0.8], [0.9]], [False, False, True, True])
    >>> w[0] > 0
    True
    """
    import numpy as np

    X = np.c_[np.asarray(features, dtype=float), np.ones(len(features))]
    y = np.asarray(labels, dtype=float)
    w = np.zeros(X.shape[1])
    reg = l2 * np.eye(X.shape[1])
    reg[-1, -1] = 0.0  # the bias is not shrunk
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-np.clip(X @ w, -30, 30)))
        grad = X.T @ (p - y) + reg @ w
        hess = (X * (p * (1 - p))[:, None]).T @ X + reg
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return [float(v) for v in w]


@dataclass(frozen=True)
class Calibration:
    """Fitted cut-offs. `margin_cuts` maps a data type (or "*") to a margin cut-off.

    `fused` is [w_cosine, w_margin, bias, cut]: a logistic score over the pair's cosine and
    the judge's margin, fitted on the calibration split. Where present it decides the band:
    the two signals fail on different pairs (the English-only embedding on translations,
    the small judge on near-duplicates it still calls different), so together they do
    better than either.
    """

    judge_model: str | None = None
    prompt_version: str = PROMPT_VERSION
    margin_cuts: dict[str, float] = field(default_factory=dict)
    cosine_cut: float | None = None
    embed_model: str | None = None
    fitted_on: dict[str, int] = field(default_factory=dict)
    quality: dict[str, float] = field(default_factory=dict)
    fused: list[float] | None = None
    # [w_logit_p, w_margin, bias, cut]: a logistic score over the pair verifier's probability
    # (as a logit) and the judge's margin, fitted on calibration pairs in the verifier's
    # uncertain band `band`, the only pairs `decontam check` asks the judge about.
    fused_verifier: list[float] | None = None
    band: list[float] | None = None

    def band_says(self, prob: float, margin: float, judge_model: str) -> bool | None:
        """The decision on a pair in the verifier's band from its probability and the judge's
        margin, or None when this calibration has no such fusion for this judge.

        >>> cal = Calibration(judge_model="q", fused_verifier=[1.0, 1.0, 0.0, 0.0])
        >>> cal.band_says(0.5, 2.0, "q"), cal.band_says(0.5, -2.0, "q"), cal.band_says(0.5, 2.0, "other")
        (True, False, None)
        """
        if self.fused_verifier is None or not self._fits(judge_model):
            return None
        w_p, w_margin, bias, cut = self.fused_verifier
        return w_p * _logit(prob) + w_margin * margin + bias >= cut

    def fused_says(self, cosine: float, margin: float, judge_model: str) -> bool | None:
        """The fused decision, or None when this calibration has none for this judge."""
        if self.fused is None or not self._fits(judge_model):
            return None
        w_cos, w_margin, bias, cut = self.fused
        return w_cos * cosine + w_margin * margin + bias >= cut

    def _fits(self, judge_model: str) -> bool:
        return self.judge_model is not None and judge_model == self.judge_model and self.prompt_version == PROMPT_VERSION

    def margin_cut(self, data_type: str, judge_model: str) -> float | None:
        """The cut-off for this judge and data type, or None when this calibration does not fit it."""
        if not self._fits(judge_model):
            return None
        return self.margin_cuts.get(data_type, self.margin_cuts.get("*"))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Calibration:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            return cls(**data)
        except FileNotFoundError as exc:
            raise CalibrationError(f"no calibration file at {path}: make one with `decontam calibrate`") from exc
        except (ValueError, TypeError) as exc:
            raise CalibrationError(f"calibration file {path} is malformed ({exc}); refit it with `decontam calibrate`") from exc


def _logit(p: float) -> float:
    p = min(max(float(p), 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


# Below this AUC of the judge's margin on the calibration pairs, the judge gets no cut.
MIN_JUDGE_AUC = 0.6


def fit_calibration(pairs: Sequence, *, judge=None, embedder=None, progress=None) -> Calibration:
    """Fit the cosine cut-off (and, with a judge, margin cut-offs per data type) on labelled pairs.

    `pairs` are `decontam.testbed.LabelledPair`s (a, b, label, data_type).
    """
    import numpy as np

    from decontam.embed_search import default_embedder, embed_texts
    from decontam.judge import ERROR, JudgePair

    say = progress or (lambda msg: None)
    embedder = embedder or default_embedder()
    labels = [bool(p.label) for p in pairs]
    va = embed_texts([p.a for p in pairs], embedder)
    vb = embed_texts([p.b for p in pairs], embedder)
    cosines = [float(x) for x in np.einsum("ij,ij->i", va, vb)]
    # The default embedder is English-only: fit its cut on same-language pairs where told.
    same = [k for k, p in enumerate(pairs) if not getattr(p, "cross_lingual", False) and "chinese" not in p.set_name]
    cos_cut, cos_f1 = fit_threshold([cosines[k] for k in same], [labels[k] for k in same])
    say(f"cosine cut {cos_cut:.3f} (F1 {cos_f1:.3f}, AUC {auc(cosines, labels):.3f}) on {len(pairs)} pairs")
    quality = {"cosine_f1": cos_f1, "cosine_auc": auc(cosines, labels)}
    margin_cuts: dict[str, float] = {}
    fused = None
    fitted_on = {"pairs": len(pairs), "positives": sum(labels)}
    judge_model = None
    if judge is not None:
        judge_model = judge.model_id
        verdicts = judge.judge_many([JudgePair(p.a, p.b, p.data_type) for p in pairs])
        ok = [(v.margin, y, p.data_type) for v, y, p in zip(verdicts, labels, pairs) if v.label != ERROR and v.margin is not None]
        ok_cos = [c for c, v in zip(cosines, verdicts) if v.label != ERROR and v.margin is not None]
        fitted_on["judged"] = len(ok)
        if len({y for _, y, _ in ok}) < 2:
            raise CalibrationError("the judge returned no usable margins (does the server return logprobs?)")
        margin_cuts["*"], quality["margin_f1"] = fit_threshold([m for m, _, _ in ok], [y for _, y, _ in ok])
        quality["margin_auc"] = auc([m for m, _, _ in ok], [y for _, y, _ in ok])
        for dt in sorted({d for _, _, d in ok}):
            sub = [(m, y) for m, y, d in ok if d == dt]
            if len({y for _, y in sub}) == 2 and len(sub) >= 40:
                margin_cuts[dt], quality[f"margin_f1_{dt}"] = fit_threshold([m for m, _ in sub], [y for _, y in sub])
        feats = [[c, m] for c, (m, _, _) in zip(ok_cos, ok)]
        ys = [y for _, y, _ in ok]
        w = fit_logistic(feats, ys)
        scores = [w[0] * c + w[1] * m + w[2] for c, m in feats]
        fused_cut, quality["fused_f1"] = fit_threshold(scores, ys)
        fused = [w[0], w[1], w[2], fused_cut]
        say(f"margin cuts {margin_cuts} (AUC {quality['margin_auc']:.3f}); fused F1 {quality['fused_f1']:.3f}")
        if quality["margin_auc"] < MIN_JUDGE_AUC:
            # A judge whose margin ranks the calibration pairs no better than chance must not
            # override anything: it stays advisory (verdicts and reasons in the report only).
            margin_cuts, fused = {}, None
            quality["judge_advisory"] = 1.0
            say(f"judge margin AUC {quality['margin_auc']:.3f} < {MIN_JUDGE_AUC}: the judge stays advisory (no cut)")
    return Calibration(
        judge_model=judge_model, margin_cuts=margin_cuts, cosine_cut=cos_cut,
        embed_model=embedder.model_id, fitted_on=fitted_on, quality=quality, fused=fused,
    )


def fit_band_calibration(examples: Sequence[dict], *, judge_model: str, band: Sequence[float],
                         verifier_cut: float | None = None, progress=None) -> Calibration:
    """Fit how the judge decides the verifier's uncertain band, on labelled calibration pairs
    from that band: dicts with the verifier's `prob`, the judge's `margin` (None, or `error`
    True, when it gave no usable answer), `label` and `data_type`.

    The fusion is a two-feature logistic regression over logit(prob) and the margin, its cut
    the F1-optimal one on the same pairs; where the probability gets a negative weight (inside
    the band it can rank a small sample backwards), the margin alone. When the margin ranks these pairs no better than
    `MIN_JUDGE_AUC`, the judge ships advisory (no fusion): it never overrides the verifier.
    """
    say = progress or (lambda msg: None)
    ok = [e for e in examples if e.get("margin") is not None and not e.get("error")]
    labels = [bool(e["label"]) for e in ok]
    if len(set(labels)) < 2:
        raise CalibrationError("the band pairs need usable margins of both labels (does the server return logprobs?)")
    margins = [float(e["margin"]) for e in ok]
    logits = [_logit(e["prob"]) for e in ok]
    quality = {"margin_auc": auc(margins, labels), "verifier_auc": auc(logits, labels)}
    _, quality["margin_f1"] = fit_threshold(margins, labels)
    w = fit_logistic([[lp, m] for lp, m in zip(logits, margins)], labels)
    if w[0] < 0:
        # inside its own uncertain band the verifier's probability may rank a small sample
        # backwards; a higher probability must never lower the score: the margin alone then
        w_m = fit_logistic([[m] for m in margins], labels)
        w = [0.0, w_m[0], w_m[1]]
        quality["verifier_weight_dropped"] = 1.0
    scores = [w[0] * lp + w[1] * m + w[2] for lp, m in zip(logits, margins)]
    cut, quality["fused_f1"] = fit_threshold(scores, labels)
    quality["fused_auc"] = auc(scores, labels)
    def f1(pred, gold) -> float:
        tp = sum(p and y for p, y in zip(pred, gold))
        return 2 * tp / (sum(pred) + sum(gold)) if sum(pred) + sum(gold) else 0.0

    fused_pred = [s >= cut for s in scores]
    verifier_pred = [e["prob"] >= verifier_cut for e in ok] if verifier_cut is not None else None
    if verifier_pred is not None:  # the verifier alone on the same pairs, at its own cut
        quality["verifier_f1"] = f1(verifier_pred, labels)
    for dt in sorted({e["data_type"] for e in ok}):  # per data type, at the one shared cut
        idx = [k for k, e in enumerate(ok) if e["data_type"] == dt]
        quality[f"fused_f1_{dt}"] = f1([fused_pred[k] for k in idx], [labels[k] for k in idx])
        if verifier_pred is not None:
            quality[f"verifier_f1_{dt}"] = f1([verifier_pred[k] for k in idx], [labels[k] for k in idx])
    fitted_on = {"pairs": len(examples), "judged": len(ok), "positives": sum(labels),
                 "per_data_type": {dt: sum(e["data_type"] == dt for e in ok) for dt in sorted({e["data_type"] for e in ok})}}
    fused: list[float] | None = [w[0], w[1], w[2], cut]
    say(f"band calibration on {len(ok)} judged pairs ({sum(labels)} positive): margin AUC {quality['margin_auc']:.3f}, "
        f"verifier AUC {quality['verifier_auc']:.3f}, fused AUC {quality['fused_auc']:.3f}, fused F1 {quality['fused_f1']:.3f}"
        + (f" (the verifier alone at its cut: F1 {quality['verifier_f1']:.3f})" if "verifier_f1" in quality else ""))
    if quality["margin_auc"] < MIN_JUDGE_AUC:
        fused = None
        quality["judge_advisory"] = 1.0
        say(f"judge margin AUC {quality['margin_auc']:.3f} < {MIN_JUDGE_AUC}: the judge stays advisory (no fusion)")
    return Calibration(judge_model=judge_model, fitted_on=fitted_on, quality=quality, fused_verifier=fused,
                       band=[float(x) for x in band])


SHIPPED_DIR = Path(__file__).with_name("calibrations")


def shipped(judge_model: str | None) -> Calibration | None:
    """The calibration that ships for a served judge model (`decontam/calibrations/<model>.json`,
    fitted by `benchmarks/fit_judge_calibration.py` on the calibration split with the current
    prompt), or None when none fits this model and prompt version.

    >>> shipped(None) is None
    True
    """
    if not judge_model:
        return None
    import re

    path = SHIPPED_DIR / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', judge_model)}.json"
    if not path.exists():
        return None
    cal = Calibration.load(path)
    return cal if cal._fits(judge_model) else None
