"""System commands: doctor."""
from __future__ import annotations

import typer

from sparseseq_cli.cli.app import app
from sparseseq_cli.cli.options import DeviceOpt, JsonOpt, ThreadsOpt

_ENV_LINES = (("python", "python"), ("torch", "torch"), ("CUDA", "cuda"), ("cuDNN", "cudnn"),
              ("device", "device"), ("GPU", "gpu"), ("GPU memory", "gpu_memory_gib"),
              ("CPU threads", "cpu_threads"), ("CPU cores", "cpu_count"),
              ("load average", "load_average"), ("platform", "platform"))


@app.command()
def doctor(device: DeviceOpt = "auto", threads: ThreadsOpt = None, json_out: JsonOpt = False) -> None:
    """Check this machine in under a minute: versions, then checks, each ok or failed.

    On the device: SparseLSTM impl=sequential and impl=dense against nn.LSTM
    loaded with dense_weights() (forward and gradients: max abs difference);
    SparseEmbedding lookup and decode against the dense matrix; 30 training
    steps of a small sparse language model lower its loss (first and last);
    a quick timing of SparseLSTM sequential vs dense vs the equal-parameter
    nn.LSTM, with the impl that auto picks next to the faster one measured.

    The timing is informative: it fails only when it cannot run, never
    because auto's pick was the slower one (small layers and a short timing
    need not rank them as the model's sizes do; `sparseseq bench` measures
    those). Exit status 1 when a check fails.
    """
    from sparseseq_cli.devices import resolve_device, using_threads
    from sparseseq_cli.doctor import run_doctor
    from sparseseq_cli.files import to_json

    with using_threads(threads):
        record = run_doctor(resolve_device(device))
    if json_out:
        print(to_json(record, indent=2))
    else:
        print_doctor(record)
    if not record["ok"]:
        raise typer.Exit(1)


def print_doctor(record: dict) -> None:
    """The versions, then one line per check: name, ok or FAILED, its figures (aligned lines:
    the figures are sentences, which a table's right-aligned cells would only push apart)."""
    env = record["env"]
    width = max(len(label) for label, _ in _ENV_LINES)
    for label, key in _ENV_LINES:
        value = env.get(key)
        shown = ("-" if value is None else f"{value} GiB" if key == "gpu_memory_gib"
                 else " ".join(map(str, value)) if isinstance(value, list) else str(value))
        print(f"{label:<{width}}  {shown}")
    print()
    width = max(len(c["name"]) for c in record["checks"])
    for c in record["checks"]:
        print(f"{c['name']:<{width}}  {'ok' if c['ok'] else 'FAILED':<6}  {c.get('detail', '')}")
    failed = [c["name"] for c in record["checks"] if not c["ok"]]
    print(f"\nfailed: {', '.join(failed)}" if failed else "\nall checks passed")
