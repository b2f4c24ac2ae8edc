"""The ``layernas`` command line: help everywhere, profile by name or file."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_layernas
from keras_layernas import cli
from keras_layernas.profiling import count_madds
from tests._cifar import TEST_IMAGES, cifar10_pixels, trained_cnn


def test_top_level_help_lists_the_profile_command(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    assert "profile" in capsys.readouterr().out


def test_profile_help_documents_every_option(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["profile", "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--alpha", "--input-size", "--classes", "--minimalistic", "--json", "MODEL"):
        assert option in text


def test_profile_by_application_name_prints_table_and_totals(capsys):
    status = cli.main(["profile", "mobilenet_v2", "--alpha", "0.35", "--input-size", "96"])

    expected = count_madds(
        keras.applications.MobileNetV2(weights=None, alpha=0.35, input_shape=(96, 96, 3))
    )
    out = capsys.readouterr().out
    assert status == 0
    assert f"Total MAdds: {expected:,}" in out
    assert "block_16_project" in out and "Conv2D" in out


def test_profile_json_output_has_totals_and_rows(capsys):
    status = cli.main(
        ["profile", "mobilenet_v3_small", "--alpha", "0.75", "--input-size", "96", "--classes", "10", "--json"]
    )
    report = json.loads(capsys.readouterr().out)
    assert status == 0
    assert report["madds"] == sum(row["madds"] for row in report["layers"]) > 0
    assert report["layers"][-1]["output_shape"] == [None, 10]


def test_profile_of_a_saved_keras_file_at_another_input_size(tmp_path, capsys):
    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(4, 3, padding="same")(inputs))
    path = tmp_path / "tiny.keras"
    model.save(path)

    status = cli.main(["profile", str(path), "--input-size", "8"])

    assert status == 0
    assert f"Total MAdds: {8 * 8 * 9 * 3 * 4:,}" in capsys.readouterr().out


def test_architecture_options_are_rejected_for_a_saved_file(tmp_path, capsys):
    inputs = keras.Input((4, 4, 3))
    path = tmp_path / "tiny.keras"
    keras.Model(inputs, keras.layers.Conv2D(2, 1)(inputs)).save(path)

    assert cli.main(["profile", str(path), "--alpha", "0.5"]) == 2
    assert "--alpha only applies to keras.applications names" in capsys.readouterr().err


def test_unknown_model_name_fails_with_what_was_received(capsys):
    assert cli.main(["profile", "mobilenet_v9"]) == 2
    assert "Received: MODEL=mobilenet_v9" in capsys.readouterr().err


def test_option_the_model_does_not_have_is_rejected(capsys):
    assert cli.main(["profile", "resnet50", "--alpha", "0.5"]) == 2
    assert "resnet50 has no alpha option" in capsys.readouterr().err


def test_non_positive_input_size_is_rejected_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["profile", "mobilenet_v2", "--input-size", "0"])
    assert exit_info.value.code == 2
    assert "positive integer" in capsys.readouterr().err


@pytest.mark.slow
def test_module_entry_point_runs_in_a_fresh_process():
    result = subprocess.run(
        [sys.executable, "-m", "keras_layernas.cli", "profile", "mobilenet_v2", "--alpha", "0.35",
         "--input-size", "96"],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Total MAdds: " in result.stdout


# -- compress, space, export ---------------------------------------------------------
MNV2_035 = ["mobilenet_v2", "--alpha", "0.35", "--input-size", "96", "--classes", "10"]


@pytest.mark.parametrize("command, options", [
    ("compress", ("MODEL", "--target-madds", "--target-latency-ms", "--calibration-archs",
                  "--tolerance", "--data", "--max-trials",
                  "--epochs-per-trial", "--finetune-epochs", "--int8", "--out", "--overwrite",
                  "--preprocess", "--exclude")),
    ("space", ("MODEL", "--num-buckets", "--per-bucket", "--json", "--alpha")),
    ("export", ("MODEL", "--out", "--int8", "--float16", "--data", "--input-size",
                "--preprocess")),
])
def test_help_of_each_new_command_documents_its_options(command, options, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert all(option in text for option in options)


@pytest.mark.slow
def test_compress_writes_model_tflite_report_and_plot_inside_the_target(tmp_path, capsys):
    out = tmp_path / "slim"
    status = cli.main(["compress", *MNV2_035, "--target-madds", "6e6", "--max-trials", "50",
                       "--out", str(out), "--quiet"])
    assert status == 0
    names = {p.name for p in out.iterdir() if p.is_file()}
    assert {"model.keras", "model.tflite", "report.json", "pareto.png"} <= names
    slim = keras.saving.load_model(out / "model.keras")
    assert 5.7e6 <= count_madds(slim) <= 6e6
    report = json.loads((out / "report.json").read_text())
    assert report["madds"] == count_madds(slim) and report["trials"] == 50


def test_compress_below_the_smallest_model_exits_2_naming_the_minimum(tmp_path, capsys):
    status = cli.main(["compress", *MNV2_035, "--target-madds", "1e5", "--out", str(tmp_path)])
    assert status == 2
    assert "smallest model this search space can reach" in capsys.readouterr().err


def test_space_json_matches_the_search_space(capsys):
    from keras_layernas.surgery import SearchSpace

    status = cli.main(["space", *MNV2_035, "--json"])
    report = json.loads(capsys.readouterr().out)
    space = SearchSpace.from_model(
        keras.applications.MobileNetV2(weights=None, alpha=0.35, input_shape=(96, 96, 3), classes=10)
    )
    assert status == 0
    assert [layer["name"] for layer in report["layers"]] == space.names
    assert report["architectures"] == space.num_architectures
    assert report["max_trials"] == space.max_trials(100, 3)
    assert report["base_madds"] == space.cost(space.base_arch)
    assert 0 < report["min_madds"] < report["base_madds"]


def test_space_table_prints_layers_and_bounds(capsys):
    assert cli.main(["space", *MNV2_035]) == 0
    out = capsys.readouterr().out
    assert "block_16_project" in out and "LayerNAS bound (H=100, k=3)" in out


@pytest.mark.slow
def test_export_writes_float16_and_int8_files(tmp_path, capsys):
    model = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Conv2D(8, 3),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(4)])
    path = tmp_path / "tiny.keras"
    model.save(path)
    assert cli.main(["export", str(path), "--float16", "--out", str(tmp_path / "f16.tflite")]) == 0
    assert cli.main(["export", str(path), "--int8", "--out", str(tmp_path / "i8.tflite")]) == 0
    captured = capsys.readouterr()
    assert "random inputs" in captured.err
    assert (tmp_path / "f16.tflite").stat().st_size > 0 and (tmp_path / "i8.tflite").stat().st_size > 0


def test_compress_target_as_a_percentage_of_the_model(tmp_path):
    out = tmp_path / "slim"
    status = cli.main(["compress", *MNV2_035, "--target-madds", "50%", "--max-trials", "20",
                       "--out", str(out), "--quiet"])
    assert status == 0
    report = json.loads((out / "report.json").read_text())
    assert report["target"][1] == pytest.approx(0.5 * report["base_madds"])
    assert 0.95 * 0.5 * report["base_madds"] <= report["madds"] <= 0.5 * report["base_madds"]


def test_compress_exclude_keeps_the_named_layers_whole(tmp_path):
    out = tmp_path / "slim"
    status = cli.main(["compress", *MNV2_035, "--target-madds", "50%", "--max-trials", "20",
                       "--exclude", "Conv1, block_16_project", "--out", str(out), "--quiet"])
    assert status == 0
    report = json.loads((out / "report.json").read_text())
    assert "Conv1" not in report["arch"] and "block_16_project" not in report["arch"]
    slim = keras.saving.load_model(out / "model.keras")
    assert slim.get_layer("Conv1").filters == 16 and slim.get_layer("block_16_project").filters == 112
    assert 0.95 * 0.5 * report["base_madds"] <= report["madds"] <= 0.5 * report["base_madds"]


def test_compress_exclude_of_an_unknown_layer_exits_2_naming_it(tmp_path, capsys):
    status = cli.main(["compress", *MNV2_035, "--target-madds", "50%", "--exclude", "no_such_layer",
                       "--out", str(tmp_path)])
    assert status == 2 and "no_such_layer" in capsys.readouterr().err


@pytest.mark.parametrize("budget", ["150%", "0%", "abc%"])
def test_compress_refuses_a_percentage_outside_0_to_100(budget, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["compress", *MNV2_035, "--target-madds", budget])
    assert exit_info.value.code == 2
    assert "above 0% and below 100%, e.g. 50%" in capsys.readouterr().err


@pytest.mark.slow
def test_compress_to_several_targets_writes_a_folder_per_target(tmp_path, capsys):
    out = tmp_path / "tiers"
    status = cli.main(["compress", *MNV2_035, "--target-madds", "6e6,50%", "--max-trials", "50",
                       "--out", str(out)])
    assert status == 0
    assert sorted(p.name for p in out.iterdir()) == ["search", "target_50pct", "target_6M"]
    reports = {}
    for folder in ("target_6M", "target_50pct"):
        names = {p.name for p in (out / folder).iterdir()}
        assert {"model.keras", "model.tflite", "model.preprocess.json", "report.json",
                "report.history.jsonl.gz", "pareto.png"} <= names
        reports[folder] = json.loads((out / folder / "report.json").read_text())
        slim = keras.saving.load_model(out / folder / "model.keras")
        assert reports[folder]["madds"] == count_madds(slim)
        assert reports[folder]["trials"] == 50  # one search for both
    assert 5.7e6 <= reports["target_6M"]["madds"] <= 6e6
    half = 0.5 * reports["target_50pct"]["base_madds"]
    assert 0.95 * half <= reports["target_50pct"]["madds"] <= half
    printed = capsys.readouterr().out
    assert printed.count("Params:") == 2 and printed.count("Wrote ") == 2


@pytest.mark.parametrize("budgets, message", [
    ("6e6,,4e6", "separated by single commas"),
    ("6e6,150%", "above 0% and below 100%"),
])
def test_compress_refuses_a_malformed_list_of_targets(budgets, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["compress", *MNV2_035, "--target-madds", budgets])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_compress_refuses_several_latency_budgets_naming_the_madds_alternative(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["compress", *MNV2_035, "--target-latency-ms", "3,2"])
    assert exit_info.value.code == 2
    assert "MAdds budgets only (--target-madds 300e6,200e6)" in capsys.readouterr().err


def test_compress_refuses_the_same_target_twice_naming_both(tmp_path, capsys):
    status = cli.main(["compress", *MNV2_035, "--target-madds", "6e6,4e6,6e6", "--out",
                       str(tmp_path)])
    assert status == 2
    assert "target_madds[0] and target_madds[2] are the same budget" in capsys.readouterr().err


def test_compress_takes_one_target_only(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["compress", *MNV2_035, "--target-madds", "6e6", "--target-latency-ms", "3"])
    assert exit_info.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err



@pytest.mark.slow
def test_compress_to_a_latency_target_reports_predicted_and_measured_latency(tmp_path, capsys):
    # The target follows this machine's own calibrated base (60% of it, as the
    # latency benchmark does): a fixed number in ms passes only where the
    # machine happens to be slow enough for the base to miss it.
    def compress(out, target_ms):
        status = cli.main(["compress", *MNV2_035, "--target-latency-ms", str(target_ms),
                           "--calibration-archs", "4", "--max-trials", "50", "--out", str(out),
                           "--quiet"])
        assert status == 0
        return json.loads((out / "report.json").read_text())

    with pytest.warns(UserWarning, match="returning an unchanged copy"):
        unchanged = compress(tmp_path / "base", 1e6)
    base_ms = unchanged["latency"]["base_predicted_ms"]
    out = tmp_path / "slim"
    (out / "search").mkdir(parents=True)
    # the same measurements, so the second run fits the same latency model
    shutil.copy(tmp_path / "base" / "search" / "compress.latency.json", out / "search")
    target_ms = 0.6 * base_ms
    report = compress(out, target_ms)
    assert report["cost"] == "latency"
    low, high = report["target"]
    assert high == pytest.approx(target_ms)
    assert report["latency"]["base_predicted_ms"] == pytest.approx(base_ms)
    assert low <= report["latency"]["predicted_ms"] <= high
    assert report["latency"]["measured_ms"] > 0 and report["latency"]["calibration_archs"] == 4
    assert (out / "search" / "compress.latency.json").exists()  # measurements kept for a resume


# -- errors: one line naming the fix, exit status 2 ------------------------------------
def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    return err


def _tiny_model_file(tmp_path, name: str = "tiny.keras"):
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(8, 3)(inputs))
    path = tmp_path / name
    keras.Model(inputs, keras.layers.Dense(4)(x)).save(path)
    return path


def _pixels_npz(path, low=0, high=255, count=8, size=16):
    rng = np.random.default_rng(0)
    np.savez(path, x_train=rng.uniform(low, high, (count, size, size, 3)).astype("float32"),
             y_train=rng.integers(0, 4, count))
    return path


def test_version_prints_the_package_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"layernas {keras_layernas.__version__}"


def test_a_range_narrower_than_one_option_step_exits_2_naming_tolerance(tmp_path, capsys):
    status = cli.main(["compress", *MNV2_035, "--target-madds", "6e6", "--tolerance", "1e-6",
                       "--max-trials", "20", "--quiet", "--out", str(tmp_path / "out")])
    assert status == 2
    assert "Received: --tolerance 1e-06" in _one_line_error(capsys)


@pytest.mark.parametrize("command", ["compress", "export"])
def test_a_missing_npz_exits_2_naming_the_file(tmp_path, capsys, command):
    missing = tmp_path / "absent.npz"
    extra = ["--target-madds", "6e6"] if command == "compress" else ["--int8"]
    status = cli.main([command, *MNV2_035, *extra, "--data", f"npz:{missing}",
                       "--out", str(tmp_path / "out")])
    assert status == 2
    assert f"no such file '{missing}'" in _one_line_error(capsys)


def test_out_pointing_at_a_file_exits_2(tmp_path, capsys):
    taken = tmp_path / "taken"
    taken.write_text("not a folder")
    status = cli.main(["compress", *MNV2_035, "--target-madds", "6e6", "--out", str(taken)])
    assert status == 2
    assert "--out must be a folder" in _one_line_error(capsys)
    assert taken.read_text() == "not a folder"


@pytest.mark.parametrize("alpha", ["-1", "0", "nan", "wide"])
def test_a_non_positive_alpha_is_rejected_by_the_parser(capsys, alpha):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["profile", "mobilenet_v2", "--alpha", alpha])
    assert exit_info.value.code == 2
    assert f"--alpha: must be a positive number, got {alpha}" in capsys.readouterr().err


def test_export_data_without_int8_exits_2(tmp_path, capsys):
    model = _tiny_model_file(tmp_path)
    data = _pixels_npz(tmp_path / "calib.npz")
    assert cli.main(["export", str(model), "--float16", "--data", f"npz:{data}"]) == 2
    assert "add --int8 or drop --data" in _one_line_error(capsys)
    assert not (tmp_path / "tiny_float16.tflite").exists()


def test_int8_calibration_of_a_file_without_recorded_scaling_asks_for_preprocess(tmp_path, capsys):
    model = _tiny_model_file(tmp_path)
    data = _pixels_npz(tmp_path / "calib.npz")
    status = cli.main(["export", str(model), "--int8", "--data", f"npz:{data}",
                       "--out", str(tmp_path / "i8.tflite")])
    assert status == 2
    err = _one_line_error(capsys)
    assert "tiny.preprocess.json does not record it" in err and "--preprocess mobilenet" in err
    assert not (tmp_path / "i8.tflite").exists()


@pytest.mark.parametrize("low, high, shown", [(-1, 1, "spanning [-1"), (0, 1, "spanning [0")])
def test_npz_images_already_scaled_are_refused(tmp_path, capsys, low, high, shown):
    model = _tiny_model_file(tmp_path)
    data = _pixels_npz(tmp_path / "calib.npz", low, high)
    status = cli.main(["export", str(model), "--int8", "--data", f"npz:{data}",
                       "--preprocess", "mobilenet"])
    assert status == 2
    err = _one_line_error(capsys)
    assert "must be raw RGB pixels in [0, 255]" in err and shown in err


def test_a_garbage_preprocess_record_is_named(tmp_path, capsys):
    model = _tiny_model_file(tmp_path)
    (tmp_path / "tiny.preprocess.json").write_text("{not json")
    assert cli.main(["export", str(model), "--int8", "--out", str(tmp_path / "i8.tflite")]) == 2
    assert "tiny.preprocess.json is not a preprocess record" in _one_line_error(capsys)


@pytest.mark.parametrize("name, expected", [
    ("mobilenet_v2", "mobilenet"), ("mobilenet", "mobilenet"), ("mobilenetv2", "mobilenet"),
    ("mobilenet_v3_small", "none"), ("efficientnet_b0", "none"),
])
def test_names_default_to_the_scaling_their_keras_application_expects(name, expected):
    args = cli.build_parser().parse_args(["export", name])
    assert cli._preprocess(args).name == expected


@pytest.mark.slow
def test_entry_point_keeps_tensorflow_log_lines_off_stderr(tmp_path):
    model = _tiny_model_file(tmp_path)
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run(
        [sys.executable, "-m", "keras_layernas.cli", "profile", str(model)],
        capture_output=True, text=True, timeout=300, check=False, env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "Total MAdds: " in result.stdout
    # Without the fix: "WARNING: All log messages before absl::InitializeLog()...",
    # I0000 oneDNN / cudart lines and E0000 "failed call to cuInit".
    assert result.stderr == ""


# -- int8 on real CIFAR-10: the scaling travels with the model ------------------------
def _agreement(out: str) -> float:
    match = re.search(r"agreement with Keras: top-1 ([0-9.]+), logit correlation ([0-9.]+)", out)
    assert match, out
    return float(match.group(1))


@pytest.fixture(scope="module")
def cifar_files(shared_dir, tmp_path_factory):
    """A small CNN trained on [-1, 1] CIFAR-10 images, saved, and a raw-pixel npz."""
    folder = tmp_path_factory.mktemp("cifar")
    trained_cnn(shared_dir).save(folder / "trained.keras")
    x_train, y_train = cifar10_pixels(shared_dir, "train", 300)
    x_test, y_test = cifar10_pixels(shared_dir, "test", TEST_IMAGES)
    np.savez(folder / "cifar.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return folder


@pytest.mark.slow
def test_export_int8_with_data_prints_agreement_and_records_the_scaling(cifar_files, capsys):
    data = f"npz:{cifar_files / 'cifar.npz'}"
    out = cifar_files / "trained_int8.tflite"
    assert cli.main(["export", str(cifar_files / "trained.keras"), "--int8", "--data", data,
                     "--preprocess", "mobilenet", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert f"Checked on {TEST_IMAGES} test images" in captured.out
    assert _agreement(captured.out) >= 0.95  # measured 0.988
    record = json.loads((cifar_files / "trained_int8.preprocess.json").read_text())
    assert record["preprocess"] == "mobilenet" and record["input_range"] == [-1.0, 1.0]
    assert captured.err == ""

    # The old silent ruin, raw pixels for a model trained on [-1, 1], is now loud:
    # the Keras model itself falls to chance on the images it is checked on.
    assert cli.main(["export", str(cifar_files / "trained.keras"), "--int8", "--data", data,
                     "--preprocess", "none", "--out", str(cifar_files / "raw.tflite")]) == 0
    captured = capsys.readouterr()
    keras_accuracy = float(re.search(r"\(Keras ([0-9.]+)\)", captured.out).group(1))
    assert keras_accuracy < 0.15  # measured 0.1 (chance), 0.37 when scaled as trained
    assert "check that --preprocess none is how the model was trained" in captured.err


@pytest.mark.slow
def test_compress_then_export_int8_reads_the_recorded_scaling(cifar_files, capsys):
    slim = cifar_files / "slim"
    assert cli.main(["compress", str(cifar_files / "trained.keras"), "--target-madds", "5e6",
                     "--preprocess", "mobilenet", "--max-trials", "30", "--quiet",
                     "--out", str(slim)]) == 0
    assert json.loads((slim / "model.preprocess.json").read_text())["preprocess"] == "mobilenet"
    capsys.readouterr()
    # The README's flow, with no --preprocess: the record next to model.keras is used.
    assert cli.main(["export", str(slim / "model.keras"), "--int8", "--data",
                     f"npz:{cifar_files / 'cifar.npz'}", "--out", str(slim / "i8.tflite")]) == 0
    out = capsys.readouterr().out
    assert _agreement(out) >= 0.9
    assert "--preprocess mobilenet" in out


def test_compress_steps_without_data_exits_2_naming_the_fix(tmp_path, capsys):
    status = cli.main(["compress", *MNV2_035, "--target-madds", "30%", "--steps", "2", "--out", str(tmp_path)])
    assert status == 2 and "steps > 1 needs data" in capsys.readouterr().err


@pytest.mark.parametrize("steps", ["0", "two"])
def test_compress_refuses_steps_that_are_not_a_positive_count_or_auto(steps, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["compress", *MNV2_035, "--target-madds", "30%", "--steps", steps])
    assert exit_info.value.code == 2 and "--steps" in capsys.readouterr().err


def test_compress_steps_writes_the_last_steps_model(tmp_path, monkeypatch):
    calls = []

    def last_step_only(model, target_madds, **kwargs):
        calls.append((target_madds, kwargs["steps"], kwargs["directory"]))
        return [keras_layernas.CompressionSearch(model, target_madds, verbose=0).run()]

    monkeypatch.setattr(keras_layernas.compression, "compress_in_steps", last_step_only)
    status = cli.main(["compress", *MNV2_035, "--target-madds", "30%", "--steps", "auto", "--quiet",
                       "--out", str(tmp_path)])
    assert status == 0 and calls == [("30%", "auto", str(tmp_path / "search"))]
    saved = keras.models.load_model(tmp_path / "model.keras")
    report = json.loads((tmp_path / "report.json").read_text())
    assert count_madds(saved) == report["madds"] <= 0.3 * report["base_madds"]
