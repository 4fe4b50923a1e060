"""Dataset explain jobs in-process: one row and one array file per image, resume, failures."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from job_images import make_spec, write_images

from dmbp_onnx.errors import InputError, ModelLoadError
from dmbp_onnx.jobs import job as job_module
from dmbp_onnx.jobs.index import INDEX_NAME, Index, read_rows
from dmbp_onnx.jobs.run import run_job
from dmbp_onnx.jobs.sources import iter_sources


def _npz(out: Path) -> list[Path]:
    return sorted((out / "maps").glob("*.npz"))


def test_folder_gives_one_row_and_one_npz_per_image(images, tmp_path):
    out = tmp_path / "out"
    summary = run_job(make_spec(out), [images])
    rows = read_rows(out / INDEX_NAME)
    assert (summary.ok, summary.failed, summary.skipped) == (10, 0, 0)
    assert len(rows) == 10 and len({r["key"] for r in rows}) == 10
    assert len(_npz(out)) == 10
    assert not list((out / "maps").glob(".*")), "no temporary files are left behind"
    row = rows[0]
    assert row["status"] == "ok" and row["settings"]["methods"] == ["gradxinput"]
    assert isinstance(row["target"], int) and np.isfinite(row["score"])
    with np.load(out / row["files"]["gradxinput_arrays"]) as arrays:
        assert arrays["signed"].shape == (3, 64, 64)


def test_resume_after_a_limited_run_recomputes_nothing(images, tmp_path, monkeypatch):
    out = tmp_path / "out"
    first = run_job(make_spec(out), [images], limit=5)
    assert first.ok == 5 and len(_npz(out)) == 5
    mtimes = {p: p.stat().st_mtime_ns for p in _npz(out)}
    explained = []
    original = job_module.ExplainJob.run
    monkeypatch.setattr(job_module.ExplainJob, "run",
                        lambda self, records: explained.extend(r["path"] for r in records) or original(self, records))
    second = run_job(make_spec(out), [images])
    assert (second.ok, second.skipped) == (5, 5) and len(explained) == 5
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes
    assert len(read_rows(out / INDEX_NAME)) == 10 and len(_npz(out)) == 10
    third = run_job(make_spec(out), [images])
    assert (third.ok, third.failed, third.skipped) == (0, 0, 10) and len(explained) == 5


def test_rerun_after_an_interrupt_finishes_the_job_exactly_once(images, tmp_path, monkeypatch):
    out = tmp_path / "out"
    original = job_module.ExplainJob.run
    calls = []

    def interrupted_on_the_second_batch(self, records):
        calls.append(len(records))
        if len(calls) == 2:
            raise KeyboardInterrupt
        return original(self, records)

    monkeypatch.setattr(job_module.ExplainJob, "run", interrupted_on_the_second_batch)
    with pytest.raises(KeyboardInterrupt):
        run_job(make_spec(out), [images])
    assert len(read_rows(out / INDEX_NAME)) == 4
    monkeypatch.setattr(job_module.ExplainJob, "run", original)
    second = run_job(make_spec(out), [images])
    assert (second.ok, second.skipped) == (6, 4)
    rows = read_rows(out / INDEX_NAME)
    assert len(rows) == 10 and len({r["image"] for r in rows}) == 10 and len(_npz(out)) == 10


def test_other_settings_are_other_work(images, tmp_path):
    out = tmp_path / "out"
    run_job(make_spec(out), [images], limit=2)
    again = run_job(make_spec(out, methods=("gradient",)), [images], limit=2)
    assert again.ok == 2 and again.skipped == 0


def test_bad_images_are_failed_rows_and_the_job_goes_on(images, tmp_path, monkeypatch):
    (images / "broken.png").write_bytes(b"not an image")
    out = tmp_path / "out"
    load = job_module.ExplainJob._load

    def nan_for_img003(self, record):
        image = load(self, record)
        if record["path"].endswith("img003.png"):
            image.array[:] = np.nan
        return image

    monkeypatch.setattr(job_module.ExplainJob, "_load", nan_for_img003)
    summary = run_job(make_spec(out), [images])
    rows = {Path(r["image"]).name: r for r in read_rows(out / INDEX_NAME)}
    assert (summary.ok, summary.failed) == (9, 2) and len(rows) == 11
    assert rows["broken.png"]["status"] == "failed" and "cannot read" in rows["broken.png"]["error"]
    assert rows["img003.png"]["status"] == "failed" and "non-finite score" in rows["img003.png"]["error"]
    assert rows["img004.png"]["status"] == "ok" and len(_npz(out)) == 9
    assert run_job(make_spec(out), [images]).skipped == 11


def test_wrong_size_is_a_failed_row(images, tmp_path, monkeypatch):
    """An input the model cannot take (as from a model with a dynamic declared size) fails alone."""
    load = job_module.ExplainJob._load

    def half_size_img001(self, record):
        image = load(self, record)
        if record["path"].endswith("img001.png"):
            return dataclasses.replace(image, array=image.array[..., :32, :32].copy())
        return image

    monkeypatch.setattr(job_module.ExplainJob, "_load", half_size_img001)
    out = tmp_path / "out"
    summary = run_job(make_spec(out), [images], limit=3)
    rows = {Path(r["image"]).name: r for r in read_rows(out / INDEX_NAME)}
    assert (summary.ok, summary.failed) == (2, 1)
    assert rows["img001.png"]["status"] == "failed" and rows["img001.png"]["error"]


def test_manifest_with_targets_and_glob(images, tmp_path):
    manifest = tmp_path / "list.csv"
    manifest.write_text("image,target\nimages/img000.png,star\nimages/img001.png,\nimages/img002.png,1\n")
    out = tmp_path / "out"
    run_job(make_spec(out), [manifest])
    rows = read_rows(out / INDEX_NAME)
    assert [r["target"] for r in rows][::2] == [5, 1]
    text = tmp_path / "list.txt"
    text.write_text("# comment\nimages/img000.png\n\nimages/img001.png\n")
    assert [Path(s.path).name for s in iter_sources([text, str(images / "img00[89].png")])] == [
        "img000.png", "img001.png", "img008.png", "img009.png"]
    with pytest.raises(InputError, match="matches no files"):
        list(iter_sources([str(images / "*.jpg")]))


def test_index_drops_a_partial_last_line(tmp_path):
    path = tmp_path / INDEX_NAME
    path.write_text(json.dumps({"key": "a"}) + "\n" + '{"key": "b", "sta')
    with Index(path) as index:
        assert "a" in index and "b" not in index
        assert index.append({"key": "b", "score": float("nan")}) and not index.append({"key": "a"})
    rows = read_rows(path)
    assert [r["key"] for r in rows] == ["a", "b"] and np.isnan(rows[1]["score"])
    assert "NaN" not in path.read_text()


def test_cli_dataset_job(images, tmp_path):
    out = tmp_path / "out"
    command = [sys.executable, "-m", "dmbp_onnx.cli", "explain", "", str(images / "*.png"),
               "--method", "gradxinput", "--out", str(out), "--no-figures", "--limit", "3", "--device", "cpu"]
    from dmbp_onnx.explain.defaults import default_model

    command[4] = str(default_model())
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "3 explained, 0 failed, 0 already done, of 10 images" in done.stdout
    assert len(read_rows(out / INDEX_NAME)) == 3


def test_a_missing_model_is_a_typed_error(images, tmp_path):
    with pytest.raises(ModelLoadError, match="cannot read the model"):
        run_job(make_spec(tmp_path / "out", model=str(tmp_path / "absent.onnx")), [images])


def test_import_dmbp_onnx_does_not_import_ray():
    code = "import sys, dmbp_onnx, dmbp_onnx.jobs.run, dmbp_onnx.cli; assert 'ray' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code], timeout=300).returncode == 0


def test_more_images_than_a_batch(tmp_path):
    folder = tmp_path / "many"
    write_images(folder, 9, seed=1)
    out = tmp_path / "out"
    summary = run_job(make_spec(out, batch_size=2), [folder])
    assert summary.ok == 9 and len(_npz(out)) == 9


def test_output_selects_the_explained_output_of_a_multi_output_model(images, tmp_path):
    """O-Net's box regression comes first; a job explains the face probability by default (the rule of
    explain) and the box output when asked, and records the output in its settings."""
    sys.path.insert(0, str(Path(__file__).parents[1] / "models"))
    from families import export_family

    model = tmp_path / "onet.onnx"
    model.write_bytes(export_family("onet")[0].SerializeToString())
    shapes, scores = {}, {}
    for output in (None, "box"):
        out = tmp_path / f"out-{output}"
        summary = run_job(make_spec(out, model=str(model), output=output), [images])
        rows = read_rows(out / INDEX_NAME)
        assert summary.ok == 10 and rows[0]["settings"]["output"] == output
        with np.load(out / rows[0]["files"]["gradxinput_arrays"]) as arrays:
            shapes[output] = arrays["signed"].shape
        scores[output] = [r["score"] for r in rows]
        assert rows[0]["target"] in ((0, 1) if output is None else (0, 1, 2, 3))
    assert shapes[None] == shapes["box"] == (3, 24, 24) and scores[None] != scores["box"]


def test_the_dmbp_rule_is_part_of_the_settings(tmp_path):
    """Maps under another rule are other maps: the rule is in every image's key; a bad rule is refused."""
    spec = make_spec(tmp_path, methods=("dmbp",))
    other = dataclasses.replace(spec, rule="gradient")
    assert spec.settings()["rule"] is None and other.settings()["rule"] == "gradient"
    assert spec.settings() != other.settings()
    with pytest.raises(InputError, match="unknown DMBP rule"):
        dataclasses.replace(spec, rule="epsilon")
    with pytest.raises(InputError, match="applies to DMBP"):
        make_spec(tmp_path, rule="gradient")
    per_filter = dataclasses.replace(spec, regions=1)
    assert spec.settings()["regions"] is None and per_filter.settings() != spec.settings()
    with pytest.raises(InputError, match="--regions must be at least 1"):
        dataclasses.replace(spec, regions=0)
