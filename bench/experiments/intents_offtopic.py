"""Off-topic rules measured on the held-out set (docs/decisions.md, "Intents"): ``python -m bench.experiments.intents_offtopic``.

Beside the shipped rule (best confidence under ``threshold``), two rules that could be added:
a margin between the best and the runner-up, and the character-n-gram cosine similarity of
the message to its nearest training example. Each row: in-scope right, off-topic rejected.
"""

from __future__ import annotations

import numpy as np
import yaml
from sklearn.feature_extraction.text import TfidfVectorizer

from bench.intents import ROOT, heldout
from csflow.engine.intents import normalize
from csflow.engine.loader import load_project


def main() -> None:
    intents = load_project(ROOT / "flows", environ={}).intents
    assert intents is not None
    in_scope, off_topic = heldout()
    spec = yaml.safe_load((ROOT / "flows" / "intents.yaml").read_text(encoding="utf-8"))
    examples = [normalize(e) for i in spec["intents"].values() for e in i["examples"]]
    chars = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True)
    train = chars.fit_transform(examples)

    def nearest(text: str) -> float:
        return float((chars.transform([normalize(text)]) @ train.T).max())

    rows = []
    for wanted, text in in_scope:
        c = intents.classify(text)
        margin = c.confidence - (c.runner_up.confidence if c.runner_up else 0.0)
        rows.append((True, c.best.name == wanted, c.confidence, margin, nearest(text)))
    for text in off_topic:
        c = intents.classify(text)
        margin = c.confidence - (c.runner_up.confidence if c.runner_up else 0.0)
        rows.append((False, False, c.confidence, margin, nearest(text)))
    data = np.array([r[2:] for r in rows])
    is_in = np.array([r[0] for r in rows])
    right = np.array([r[1] for r in rows])

    def show(name: str, accept: np.ndarray) -> None:
        ok = (accept & right & is_in).sum() / is_in.sum()
        rejected = (~accept & ~is_in).sum() / (~is_in).sum()
        print(f"{name:<44} in scope right {ok:6.1%}   off-topic rejected {rejected:6.1%}")

    for t in (0.4, 0.45, 0.5, 0.55):
        show(f"confidence >= {t}", data[:, 0] >= t)
    for m in (0.2, 0.3, 0.4):
        show(f"confidence >= 0.4 and margin >= {m}", (data[:, 0] >= 0.4) & (data[:, 1] >= m))
    for s in (0.3, 0.4, 0.5):
        show(
            f"confidence >= 0.4 and nearest example >= {s}", (data[:, 0] >= 0.4) & (data[:, 2] >= s)
        )
        show(
            f"confidence >= 0.5 and nearest example >= {s}", (data[:, 0] >= 0.5) & (data[:, 2] >= s)
        )


if __name__ == "__main__":
    main()
