"""scripts/gpu-check.sh --dry-run: the commands it would run, in order, and nothing run."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "gpu-check.sh"
pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def dry_run(*args, env=None, cwd=None):
    done = subprocess.run(["bash", str(SCRIPT), "--dry-run", *args], capture_output=True, text=True,
                          env={**os.environ, "PYTHON": "python", **(env or {})}, cwd=cwd, timeout=60)
    assert done.returncode == 0, done.stderr
    # one line per step: "[name] command"
    return dict(line[1:].split("] ", 1) for line in done.stdout.splitlines())


def test_lists_every_step_with_outputs_under_the_folder_and_runs_nothing(tmp_path):
    out = tmp_path / "x"
    steps = dry_run(str(out), env={"PTB_DIR": "/data/ptb"})
    assert list(steps) == ["pytest-cuda", "doctor", "bench", "awd-lstm", "awd-lstm-bf16",
                           "awd-sparse", "awd-sparse-bf16", "torchrun"]
    assert steps["pytest-cuda"] == "python -m pytest -q -m cuda"
    assert steps["doctor"] == "python -m sparseseq_cli doctor --device cuda --json"
    assert steps["bench"] == "python -m sparseseq_cli bench --device cuda --json"
    for preset in ("awd-lstm", "awd-sparse"):
        plain = (f"python -m sparseseq_cli train-lm --preset {preset} --data /data/ptb --epochs 1 "
                 f"--set max_batches=200 ")
        assert steps[preset] == plain + f"--save {out}/{preset} --force --device cuda --json"
        assert steps[f"{preset}-bf16"] == (plain + f"--precision bf16 --save {out}/{preset}-bf16 "
                                           f"--force --device cuda --json")
    assert steps["torchrun"] == ("python -m torch.distributed.run --standalone --nproc-per-node 1 -m "
                                 f"sparseseq_cli train-lm --preset lm-tiny --epochs 1 --save {out}/torchrun "
                                 "--force --device cuda --json")
    assert not out.exists()


def test_default_folder_and_data_resolve_from_where_it_was_started(tmp_path):
    steps = dry_run(cwd=tmp_path, env={"PTB_DIR": ""})
    assert f"--save {tmp_path}/gpu-check-out/awd-lstm " in steps["awd-lstm"]
    assert f"--data {SCRIPT.parent.parent}/data/penn " in steps["awd-lstm"]
    relative = dry_run("out", cwd=tmp_path, env={"PTB_DIR": "penn"})
    assert f"--data {tmp_path}/penn --epochs" in relative["awd-sparse"]
    assert f"--save {tmp_path}/out/awd-sparse " in relative["awd-sparse"]
