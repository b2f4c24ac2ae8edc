"""`make demo` writes a slim model inside the target, its TFLite twin, a report and a plot."""
from __future__ import annotations

import json

import keras
import numpy as np
import pytest

import keras_layernas as layernas
from keras_layernas import demo


@pytest.mark.slow
def test_demo_writes_every_artefact_for_a_model_inside_the_target(tmp_path, capsys):
    paths = demo.run(str(tmp_path), max_trials=200)
    printed = capsys.readouterr().out
    assert "MAdds:  300.77 M ->" in printed and "fine-tune" in printed
    slim = keras.saving.load_model(paths["model"], safe_mode=True)
    assert 142.5e6 <= layernas.count_madds(slim) <= 150e6
    report = json.loads(open(paths["report"]).read())
    assert report["madds"] == layernas.count_madds(slim) and report["trials"] == 200
    assert open(paths["plot"], "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    # the input scaling travels with the model, for `layernas export --int8 --data`
    assert json.loads(open(paths["preprocess"]).read())["input_range"] == [-1.0, 1.0]

    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=paths["tflite"])
    interpreter.allocate_tensors()
    x = np.random.default_rng(0).uniform(-1, 1, (1, 224, 224, 3)).astype("float32")
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    tflite_out = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    np.testing.assert_allclose(tflite_out, slim(x, training=False), atol=1e-4)
