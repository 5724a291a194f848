"""Intents (§12): accuracy on held-out messages, off-topic rejection, and what it costs.

``python -m bench --only intents``. The held-out set (bench/data/intents_heldout.yaml) was
written apart from flows/intents.yaml's examples; a unit test checks none is copied.
Costs are printed beside a baseline of the same run: classification beside finding the
entities of the same message, loading a generated project with 10 intents x 40 examples
beside loading the same project without its intents.yaml.
"""

from __future__ import annotations

import gc
import shutil
import statistics
import tempfile
from collections import Counter
from pathlib import Path
from time import perf_counter
from typing import Any

import yaml

from csflow.engine.intents import Intents, check_intents
from csflow.engine.loader import load_project

ROOT = Path(__file__).resolve().parents[1]
HELDOUT = Path(__file__).parent / "data" / "intents_heldout.yaml"
TARGET_IN_SCOPE, TARGET_OFF_TOPIC = 0.92, 0.80


def heldout() -> tuple[list[tuple[str, str]], list[str]]:
    data = yaml.safe_load(HELDOUT.read_text(encoding="utf-8"))
    in_scope = [(name, text) for name, texts in data["in_scope"].items() for text in texts]
    return in_scope, list(data["off_topic"])


def accuracy(intents: Intents) -> dict[str, Any]:
    in_scope, off_topic = heldout()
    confusion: Counter[tuple[str, str]] = Counter()
    right = 0
    for wanted, text in in_scope:
        got = intents.classify(text).name or "(not understood)"
        confusion[(wanted, got)] += 1
        right += got == wanted
    rejected = [t for t in off_topic if intents.classify(t).name is None]
    taken = {t: intents.classify(t).best for t in off_topic if t not in rejected}
    return {
        "in_scope": (right, len(in_scope)),
        "off_topic": (len(rejected), len(off_topic)),
        "confusion": confusion,
        "off_topic_taken": taken,
    }


def _median_us(func: Any, texts: list[str], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        for text in texts:
            started = perf_counter()
            func(text)
            times.append(perf_counter() - started)
    return statistics.median(times) * 1e6


def _generated_project(folder: Path, intents: int, examples: int) -> None:
    """``intents`` intents of ``examples`` examples each, one flow per intent.

    The examples are the shipped intents' own sentences, each with words of its intent
    appended (so no two intents share one), so that their n-grams are as varied as real ones.
    """
    shipped = yaml.safe_load((ROOT / "flows" / "intents.yaml").read_text(encoding="utf-8"))
    pools = [sorted(i["examples"]) for _, i in sorted(shipped["intents"].items())]
    (folder / "flows").mkdir(parents=True)
    spec: dict[str, Any] = {"threshold": 0.5, "entities": {"email": {"type": "email"}}}
    spec["intents"] = {}
    for i in range(intents):
        name = f"intent_{i}"
        (folder / "flows" / f"{name}.yaml").write_text(
            f"name: {name}\nsteps:\n  - reply: intent {i}\n", encoding="utf-8"
        )
        pool = pools[i % len(pools)]
        spec["intents"][name] = {
            "flow": name,
            "examples": [f"{pool[j % len(pool)]} (topic {i}, case {j})" for j in range(examples)],
        }
    (folder / "intents.yaml").write_text(yaml.safe_dump(spec), encoding="utf-8")


def _load_seconds(root: Path, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        gc.collect()
        started = perf_counter()
        load_project(root, environ={})
        times.append(perf_counter() - started)
    return statistics.median(times)


def _train_seconds(root: Path, rounds: int) -> float:
    flows = load_project(root, environ={}).flows
    checked = check_intents(root, flows, [])
    assert checked is not None, f"{root} has a valid intents.yaml"
    times = []
    for _ in range(rounds):
        gc.collect()
        started = perf_counter()
        checked.train()
        times.append(perf_counter() - started)
    return statistics.median(times)


def costs(intents: Intents, quick: bool) -> dict[str, float]:
    in_scope, off_topic = heldout()
    texts = [t for _, t in in_scope] + off_topic
    rounds = 3 if quick else 10
    classify = _median_us(intents.classify, texts, rounds)
    entities = _median_us(intents.entities, texts, rounds)
    folder = Path(tempfile.mkdtemp(prefix="csflow-bench-intents-"))
    try:
        with_file, without = folder / "with", folder / "without"
        _generated_project(with_file, 10, 40)
        shutil.copytree(with_file, without)
        (without / "intents.yaml").unlink()
        load_project(with_file, environ={})  # imports and first-use caches out of the figure
        load_rounds = 3 if quick else 7
        plain = _load_seconds(without, load_rounds)
        trained = _load_seconds(with_file, load_rounds)
        plain_again = _load_seconds(without, load_rounds)  # the baseline twice: its noise
        # The shipped flows ask for entities, so they do not load without their intents.yaml:
        # the part its training takes is timed on its own instead.
        shipped_train = _train_seconds(ROOT / "flows", load_rounds)
        shipped_trained = _load_seconds(ROOT / "flows", load_rounds)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return {
        "classify_us": classify,
        "entities_us": entities,
        "load_plain_s": plain,
        "load_plain_again_s": plain_again,
        "load_trained_s": trained,
        "shipped_train_s": shipped_train,
        "shipped_trained_s": shipped_trained,
    }


def run(quick: bool) -> dict[str, Any]:
    project = load_project(ROOT / "flows", environ={})
    assert project.intents is not None, "flows/ has an intents.yaml"
    return {**accuracy(project.intents), **costs(project.intents, quick)}


def report(figures: dict[str, Any]) -> list[str]:
    right, total = figures["in_scope"]
    rejected, off = figures["off_topic"]
    lines = [
        "6. Intents: flows/intents.yaml against bench/data/intents_heldout.yaml (held out)",
        f"   in scope understood right : {right}/{total} = {right / total:.1%}"
        f"   (target >= {TARGET_IN_SCOPE:.0%})",
        f"   off-topic not understood  : {rejected}/{off} = {rejected / off:.1%}"
        f"   (target >= {TARGET_OFF_TOPIC:.0%})",
        f"   {'intent':<26} {'n':>3} {'right':>5} {'not understood':>14} {'other intent':>12}",
    ]
    wanted_names = sorted({w for w, _ in figures["confusion"]})
    for w in wanted_names:
        row = {g: n for (w2, g), n in figures["confusion"].items() if w2 == w}
        total_w = sum(row.values())
        unknown = row.get("(not understood)", 0)
        ok = row.get(w, 0)
        lines.append(f"   {w:<26} {total_w:>3} {ok:>5} {unknown:>14} {total_w - ok - unknown:>12}")
    lines.append("   confusion (wanted -> got, the mistakes only):")
    mistakes = sorted(
        ((w, g, n) for (w, g), n in figures["confusion"].items() if w != g), key=lambda m: -m[2]
    )
    lines += [f"     {w:<26} -> {g:<26} {n}" for w, g, n in mistakes] or ["     (none)"]
    if figures["off_topic_taken"]:
        lines.append("   off-topic taken as an intent:")
        lines += [
            f"     {text!r:<44} -> {s.name} {s.confidence:.2f}"
            for text, s in figures["off_topic_taken"].items()
        ]
    plain, again = figures["load_plain_s"], figures["load_plain_again_s"]
    added = figures["load_trained_s"] - (plain + again) / 2
    lines += [
        f"   classify, median per message  : {figures['classify_us']:8.0f} us   (target < 1000 us;"
        f" baseline: finding the entities of the same message {figures['entities_us']:.0f} us)",
        f"   load, 10 intents x 40 examples: {figures['load_trained_s'] * 1000:8.1f} ms;"
        f" without intents.yaml {plain * 1000:.1f} ms and {again * 1000:.1f} ms (noise);"
        f" intents add {added * 1000:.0f} ms (target < 500 ms)",
        f"   load, the shipped flows/        : {figures['shipped_trained_s'] * 1000:8.1f} ms;"
        f" of which training its intents.yaml {figures['shipped_train_s'] * 1000:.1f} ms",
    ]
    return lines


if __name__ == "__main__":
    print("\n".join(report(run(quick=False))))
