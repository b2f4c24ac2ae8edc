"""The ``layernas`` command line: help everywhere, profile by name or file."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import keras
import pytest

from keras_layernas import cli
from keras_layernas.profiling import count_madds


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
                  "--epochs-per-trial", "--finetune-epochs", "--int8", "--out", "--overwrite")),
    ("space", ("MODEL", "--num-buckets", "--per-bucket", "--json", "--alpha")),
    ("export", ("MODEL", "--out", "--int8", "--float16", "--data", "--input-size")),
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
