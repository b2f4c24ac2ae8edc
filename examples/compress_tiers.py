"""One model for every tier of phone: several MAdds budgets from one search.

An app ships to phones of several speeds, and each tier wants its own model of
the same network. ``compress`` takes a list of budgets (numbers or percentages
of the model's own MAdds), runs one LayerNAS search for all of them and
returns one slim model per budget, in the order given. Data-free here, so the
models keep what the weights say matters: fine-tune each on your data next
(or pass ``data=`` and every tier's winner is fine-tuned for you).

    python examples/compress_tiers.py      # about 20 s on 2 CPU cores
"""
from __future__ import annotations

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

import keras_layernas as layernas  # noqa: E402

TIERS = {"high-end": "60%", "mid-range": "45%", "entry": "30%"}


def main() -> None:
    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(weights=None, alpha=1.0, input_shape=(224, 224, 3))
    results = layernas.CompressionSearch(model, target_madds=list(TIERS.values()), verbose=0).run()
    print(f"base: {layernas.count_madds(model) / 1e6:.1f} M MAdds, "
          f"one search of {results[0].trials:,} trials for {len(results)} tiers")
    for (tier, budget), result in zip(TIERS.items(), results):
        low, high = result.target
        print(f"  {tier:9s} {budget:>4s}: {result.madds / 1e6:6.1f} M MAdds "
              f"(range {low / 1e6:.1f}-{high / 1e6:.1f}), {result.params / 1e6:.2f} M params, "
              f"retained importance {result.score:.3f}")
    # result.model is each tier's keras.Model: save it, fine-tune it, export it.


if __name__ == "__main__":
    main()
