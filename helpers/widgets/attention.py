"""Chapter 2's explorer: the attention heatmap of a small example, live.

The learner picks an example and moves two sliders; the figure shows

* left: the attention weights A = softmax(Q K^T / (T sqrt(d_k))) as a heatmap, one row per
  query, each cell annotated with its weight;
* right: the value vectors (rows of V, d_v = 2) as labelled points, their convex hull, and
  the outputs O = A V as crosses, each inside the hull because each is a convex average.

Examples:

* ``"worked"``: the worked example of Métwalli and Elhefny (§5; chapter 2, section 4),
  Q = K = [[1,0],[0,1],[1,1]], V = [[1,2],[3,4],[5,6]], d_k = 2 (the d_k slider is
  disabled: the example fixes it).
* ``"sentence"``: the words of a short sentence. Each word gets an embedding of width
  ``D_MODEL`` drawn from a generator seeded by the word itself (the same word always gets
  the same vector); Q = X W^Q, K = X W^K, V = X W^V with fixed-seed projections. W^Q and
  W^K have ``MAX_D_K`` columns of which the first d_k are used, so moving the d_k slider
  adds dimensions to the same queries and keys.
* ``"custom"``: arrays of your own, passed as ``AttentionExplorer(custom=...)``.

Everything the figure shows comes from :func:`attention_setting`, a pure function of the
controls' values, which calls :func:`helpers.scaled_dot_product_attention`.
"""
from __future__ import annotations

import math
import zlib

import ipywidgets as widgets
import numpy as np

from ..attention import scaled_dot_product_attention
from .explorer import Explorer

D_MODEL = 16
MAX_D_K = 64
PROJECTION_SEED = 2
WORKED_TOKENS = ("token 1", "token 2", "token 3")
WORKED_Q = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
WORKED_V = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
EXAMPLES = ("worked", "sentence", "custom")


def word_embedding(word: str) -> np.ndarray:
    """A fixed random embedding (D_MODEL,) for ``word``, seeded by the word's CRC-32."""
    rng = np.random.default_rng(zlib.crc32(word.encode("utf-8")))
    return rng.normal(size=D_MODEL)


def sentence_projections() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fixed W^Q, W^K of shape (D_MODEL, MAX_D_K) and W^V of shape (D_MODEL, 2).

    Entries are N(0, 1/D_MODEL), so each component of q = x W^Q has variance about 1
    for an embedding x with unit-variance components (the setting of the sqrt(d_k)
    argument).
    """
    rng = np.random.default_rng(PROJECTION_SEED)
    std = 1.0 / math.sqrt(D_MODEL)
    return (rng.normal(scale=std, size=(D_MODEL, MAX_D_K)),
            rng.normal(scale=std, size=(D_MODEL, MAX_D_K)),
            rng.normal(scale=std, size=(D_MODEL, 2)))


def sentence_qkv(sentence: str, d_k: int):
    """Tokens and Q (n, d_k), K (n, d_k), V (n, 2) of a sentence, split on spaces."""
    if not isinstance(sentence, str):
        raise TypeError(f"sentence must be a string, got {type(sentence).__name__}")
    tokens = sentence.split()
    if not 1 <= len(tokens) <= 12:
        raise ValueError(f"sentence must have 1 to 12 words, got {len(tokens)}: {sentence!r}")
    if isinstance(d_k, bool) or not isinstance(d_k, (int, np.integer)) or not 1 <= d_k <= MAX_D_K:
        raise ValueError(f"d_k must be an integer in 1..{MAX_D_K}, got {d_k!r}")
    x = np.stack([word_embedding(t) for t in tokens])          # (n, D_MODEL)
    w_q, w_k, w_v = sentence_projections()
    return tokens, x @ w_q[:, :d_k], x @ w_k[:, :d_k], x @ w_v


def attention_setting(example: str = "worked", sentence: str = "the cat sat on the mat",
                      temperature: float = 1.0, d_k: int = 8, custom: dict | None = None) -> dict:
    """Everything the explorer draws, as a pure function of the controls' values.

    weights = softmax(Q K^T * scale), scale = 1 / (temperature * sqrt(d_k)),
    output = weights V. Returns a dict with ``tokens``, ``q``, ``k``, ``v``, ``d_k``,
    ``scale``, ``weights`` (n_q, n_k) and ``output`` (n_q, d_v).

    ``custom`` (for example="custom"): a dict with ``q`` (n_q, d_k), ``k`` (n_k, d_k),
    ``v`` (n_k, d_v) float arrays and optionally ``tokens`` (n_k names); there the d_k
    argument is ignored (it is q's last axis), as it is for the worked example (d_k = 2).
    """
    if example not in EXAMPLES:
        raise ValueError(f"example must be one of {EXAMPLES}, got {example!r}")
    if not (isinstance(temperature, (int, float)) and temperature > 0 and math.isfinite(temperature)):
        raise ValueError(f"temperature must be a positive finite number, got {temperature!r}")
    if example == "worked":
        tokens, q, k, v = list(WORKED_TOKENS), WORKED_Q, WORKED_Q, WORKED_V
    elif example == "sentence":
        tokens, q, k, v = sentence_qkv(sentence, d_k)
    else:
        if custom is None:
            raise ValueError("example='custom' needs custom={'q': ..., 'k': ..., 'v': ...}")
        missing = [name for name in ("q", "k", "v") if name not in custom]
        if missing:
            raise ValueError(f"custom must have the keys 'q', 'k' and 'v'; missing {missing}")
        q, k, v = (np.asarray(custom[name], dtype=np.float64) for name in ("q", "k", "v"))
        tokens = list(custom.get("tokens", [f"key {j + 1}" for j in range(k.shape[0])]))
        if len(tokens) != k.shape[0]:
            raise ValueError(f"custom: {len(tokens)} tokens for k of shape {k.shape}")
    d_k_used = q.shape[-1]
    scale = 1.0 / (temperature * math.sqrt(d_k_used))
    output, weights = scaled_dot_product_attention(q, k, v, scale=scale)
    return {"tokens": tokens, "q": q, "k": k, "v": v, "d_k": d_k_used, "scale": scale,
            "weights": weights, "output": output}


def _convex_hull(points: np.ndarray) -> np.ndarray:
    """Vertices of the convex hull of 2-D points, counter-clockwise (monotone chain)."""
    pts = sorted(set(map(tuple, np.round(points, 12))))
    if len(pts) <= 2:
        return np.array(pts)

    def cross(o, a, b):
        return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])

    lower, upper = [], []
    for p in pts:
        while len(lower) >= 2 and cross(lower[-2], lower[-1], p) <= 0:
            lower.pop()
        lower.append(p)
    for p in reversed(pts):
        while len(upper) >= 2 and cross(upper[-2], upper[-1], p) <= 0:
            upper.pop()
        upper.append(p)
    return np.array(lower[:-1] + upper[:-1])


class AttentionExplorer(Explorer):
    """Attention heatmap explorer (chapter 2).

    Controls: ``example`` ("worked", "sentence", and "custom" when ``custom`` is given),
    ``sentence`` (text), ``temperature`` T (log slider; the scores are multiplied by
    scale = 1/(T sqrt(d_k)), so T = 1 is the Transformer's choice), ``d_k`` (sentence
    example only). The heatmap's data is the weights of :func:`attention_setting`.
    """

    figsize = (9.0, 4.0)

    def __init__(self, example: str = "worked", sentence: str = "the cat sat on the mat",
                 temperature: float = 1.0, d_k: int = 8, custom: dict | None = None):
        self.custom = custom
        options = [("worked example (Métwalli and Elhefny §5)", "worked"),
                   ("sentence, random projections", "sentence")]
        if custom is not None:
            options.append(("your Q, K, V", "custom"))
        style = {"description_width": "initial"}
        controls = {
            "example": widgets.Dropdown(options=options, value=example, description="example",
                                        style=style),
            "sentence": widgets.Text(value=sentence, description="sentence", continuous_update=False,
                                     style=style),
            "temperature": widgets.FloatLogSlider(value=temperature, base=10, min=-1.5, max=1.5,
                                                  step=0.05, description="temperature T",
                                                  continuous_update=False, style=style),
            "d_k": widgets.IntSlider(value=d_k, min=1, max=MAX_D_K, description="d_k",
                                     continuous_update=False, style=style),
        }
        super().__init__(controls)
        self.controls["example"].observe(self._enable_controls, names="value")
        self._enable_controls()

    def _enable_controls(self, _change=None) -> None:
        is_sentence = self.controls["example"].value == "sentence"
        self.controls["sentence"].disabled = not is_sentence
        self.controls["d_k"].disabled = not is_sentence

    def setting(self) -> dict:
        """The current setting: :func:`attention_setting` of the controls' values."""
        return attention_setting(custom=self.custom, **self.values)

    def draw(self, fig, **values) -> None:
        s = attention_setting(custom=self.custom, **values)
        weights, output, v, tokens = s["weights"], s["output"], s["v"], s["tokens"]
        ax_w, ax_o = fig.subplots(1, 2, width_ratios=[1.1, 1.0])

        n_q, n_k = weights.shape
        im = ax_w.imshow(weights, vmin=0.0, vmax=1.0, cmap="viridis")
        query_names = tokens if n_q == n_k else [f"query {i + 1}" for i in range(n_q)]
        ax_w.set_xticks(range(n_k), tokens, rotation=45, ha="right")
        ax_w.set_yticks(range(n_q), query_names)
        ax_w.set_xlabel("key (attended to)")
        ax_w.set_ylabel("query (attending)")
        if n_q * n_k <= 144:
            for i in range(n_q):
                for j in range(n_k):
                    ax_w.text(j, i, f"{weights[i, j]:.2f}", ha="center", va="center", fontsize=8,
                              color="black" if weights[i, j] > 0.6 else "white")
        fig.colorbar(im, ax=ax_w, label="attention weight")
        t = values["temperature"]
        ax_w.set_title(f"weights = softmax(QKᵀ/(T√d_k)), T = {t:.3g}, d_k = {s['d_k']}", fontsize=10)

        if v.shape[1] == 2:
            hull = _convex_hull(v)
            if len(hull) >= 3:
                ax_o.fill(hull[:, 0], hull[:, 1], color="tab:blue", alpha=0.12,
                          label="convex hull of the values")
            ax_o.scatter(v[:, 0], v[:, 1], color="tab:blue", label="values vⱼ (rows of V)")
            for j, name in enumerate(tokens):
                ax_o.annotate(name, v[j], textcoords="offset points", xytext=(4, 4), fontsize=8)
            ax_o.scatter(output[:, 0], output[:, 1], marker="x", color="tab:red", s=60,
                         label="outputs oᵢ (rows of AV)")
            ax_o.set_xlabel("value component 1")
            ax_o.set_ylabel("value component 2")
            ax_o.legend(fontsize=7, loc="best")
            ax_o.set_title("outputs are convex averages of the values", fontsize=10)
        else:
            ax_o.imshow(output, cmap="coolwarm")
            ax_o.set_xlabel("output component")
            ax_o.set_ylabel("query")
            ax_o.set_title("outputs O = AV")
