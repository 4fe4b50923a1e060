"""Every script of examples/ runs, as a user would run it, and writes what it promises."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import onnx
import pytest

from small_models import conv_net

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _run(args, cwd, timeout=240):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    return done


def test_explain_keras(tmp_path):
    done = _run([sys.executable, str(EXAMPLES / "explain_keras.py"), "--out", "k"], tmp_path)
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "k" / "report.json").read_text())
    assert report["model"]["layout"] == "NHWC" and "Softmax split off" in report["model"]["explains"]
    assert (tmp_path / "k" / "report.html").stat().st_size > 0


def test_explain_torch(tmp_path):
    done = _run([sys.executable, str(EXAMPLES / "explain_torch.py"), "--out", "t"], tmp_path)
    assert done.returncode == 0, done.stderr
    written = sorted(p.name for p in (tmp_path / "t").iterdir())
    assert written == [f"image{k}.{m}.png" for k in (0, 1) for m in ("dmbp", "gradxinput")]


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_audit_folder_in_ci(tmp_path):
    (tmp_path / "models").mkdir()
    onnx.save(conv_net(), str(tmp_path / "models" / "net.onnx"))
    done = _run(["bash", str(EXAMPLES / "ci" / "audit.sh"), "models", "reports", "--samples", "1"], tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 of 1 model(s) passed" in done.stdout
    for name in ("audit.json", "audit.xml", "audit.html"):
        assert (tmp_path / "reports" / name).stat().st_size > 0
    onnx.save(conv_net(sigmoid=True), str(tmp_path / "models" / "squashed.onnx"))  # not eligible: the gate closes
    assert _run(["bash", str(EXAMPLES / "ci" / "audit.sh"), "models", "reports", "--samples", "1"],
                tmp_path).returncode == 1


def test_ci_job_runs_the_script():
    yaml = pytest.importorskip("yaml")
    job = yaml.safe_load((EXAMPLES / "ci" / "audit.yml").read_text())
    steps = job["jobs"]["audit"]["steps"]
    assert any(step.get("run", "").startswith("examples/ci/audit.sh") for step in steps)
