"""The checks of ``bench/gpu_check.sh`` that need Python: each prints what it found and ends with
``FAILED: <reason>`` and exit code 1 at the first thing that is wrong.

    python -m bench.gpu_check device                  # a usable CUDA device: driver, architecture, a kernel
    python -m bench.gpu_check lstm                    # the LSTM's dtypes under the autocast training uses
    python -m bench.gpu_check resume image            # a chain killed and resumed gives the same bytes
    python -m bench.gpu_check resume lm --device cpu  # the same check, on the CPU (to test the check)

``resume`` copies the project into a temporary folder twice and runs its stages as processes, as
``dvc repro`` would: in one copy each generation trains uninterrupted; in the other each is killed
with SIGKILL once its second epoch is logged (so epoch 1 is saved) and run again, which resumes.
Every output file (checkpoints, predictions, metrics, DVCLive logs) must be byte for byte the same.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch
import yaml

from ban.core.errors import ConfigError
from ban.training.device import autocast, describe_device, resolve_device, resolve_precision

ROOT = Path(__file__).resolve().parents[1]
COPIED = ("ban", "ban_pipeline", "stages", "dvc.yaml", "params.yaml")  # what the stages import
OUTPUTS = ("models", "preds", "metrics", "dvclive")
EPOCHS = 3  # killed after the second epoch's line: epoch 1 is certainly saved, epoch 3 not yet trained
CHAINS: dict[str, dict[str, Any]] = {
    # the digits, a small ResNet, every kind of student: labels (teacher), BAN, CWTM, DKPP
    "image": {"data": {"name": "digits"}, "model": {"arch": "resnet", "depth": 8, "width": 16},
              "train": {"batch_size": 32},
              "students": {"gen1": {"teacher": "gen0"}, "cwtm": {"teacher": "gen0", "kd": {"mode": "cwtm"}},
                           "dkpp": {"teacher": "gen0", "kd": {"mode": "dkpp"}}}},
    # a 2-layer LSTM with dropout between its layers (cuDNN's own dropout state) and a BAN+L student
    "lm": {"data": {"name": "text"},
           "model": {"arch": "lstm", "hidden": 64, "layers": 2, "dropout": 0.5},
           "train": {"batch_size": 8, "bptt": 20, "clip_grad_norm": 5.0, "schedule": {"name": "constant"},
                     "optimizer": {"lr": 1.0, "momentum": 0.0, "weight_decay": 0.0}},
           "kd": {"label_weight": 1.0}, "students": {"gen1": {"teacher": "gen0"}}},
}


class CheckFailed(Exception):
    """What is wrong, in one line."""


def check_device() -> None:
    try:
        device = resolve_device("cuda")
    except ConfigError as error:
        raise CheckFailed(str(error)) from None
    free, total = torch.cuda.mem_get_info(device)
    print(f"torch {torch.__version__}; memory: {free / 2**30:.1f} GiB free of {total / 2**30:.1f} GiB; "
          f"native bf16: {torch.cuda.is_bf16_supported(including_emulation=False)}")
    print(f"{describe_device(device)}; train.precision auto: {resolve_precision('auto', device)}")


def check_lstm(device_name: str) -> None:
    """The recurrence and its carried state in fp32, the softmax layer in the autocast dtype."""
    from ban.nets import build_model

    device = torch.device(device_name)
    precision = resolve_precision("auto", device)
    torch.manual_seed(0)
    model = build_model("lstm", {"hidden": 64, "layers": 2, "dropout": 0.5}, vocab_size=100).to(device)
    seen: dict[str, torch.dtype] = {}
    model.lstm.register_forward_hook(lambda module, inputs, output: seen.update(lstm=output[0].dtype))
    model.decoder.register_forward_hook(lambda module, inputs, output: seen.update(decoder=output.dtype))
    tokens = torch.randint(100, (4, 10), device=device)
    with autocast(device, precision):
        logits, (h, c) = model(tokens, model.initial_state(4, device))
    logits.float().sum().backward()
    found = {**seen, "h": h.dtype, "c": c.dtype}
    print(f"precision {precision}: " + ", ".join(f"{name} {dtype}" for name, dtype in found.items()))
    wanted = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision, torch.float32)
    wrong = [name for name in ("lstm", "h", "c") if found[name] != torch.float32]
    if wrong:
        raise CheckFailed(f"the recurrence is not fp32 under {precision} autocast: {', '.join(wrong)}")
    if found["decoder"] != wanted:
        raise CheckFailed(f"the softmax layer runs in {found['decoder']}, not {wanted}")


def check_resume(chain: str, device: str, generations: list[str] | None) -> None:
    settings = CHAINS[chain]
    names = generations or ["gen0", *settings["students"]]
    with tempfile.TemporaryDirectory(prefix="ban-gpu-check-") as directory:
        whole, killed = (project(Path(directory) / name, chain, device) for name in ("whole", "killed"))
        for name in names:
            train(whole, name)
            resumed_after = kill_and_resume(killed, name)
            print(f"{name}: killed after epoch 2 was logged, resumed after epoch {resumed_after}")
        expected, found = digests(whole), digests(killed)
        if not expected:
            raise CheckFailed("the stages wrote no outputs")
        differing = sorted(path for path in expected.keys() | found.keys()
                           if expected.get(path) != found.get(path))
        if differing:
            raise CheckFailed(f"resumed outputs differ from uninterrupted ones: {', '.join(differing[:5])}")
        print(f"{len(expected)} output files identical after resuming {len(names)} generations")


def project(directory: Path, chain: str, device: str) -> Path:
    """A copy of the project with the chain's params and its prepared data."""
    directory.mkdir(parents=True)
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, directory / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, directory / name)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for key, value in CHAINS[chain].items():  # model and students are replaced, the others adjusted
        params[key] = {**params[key], **value} if key in ("data", "train", "kd") else value
    params["train"].update(epochs=EPOCHS, device=device, precision="auto", deterministic=True)
    if chain == "lm":
        write_corpus(directory / "corpus")
        params["data"]["root"] = str(directory / "corpus")
    (directory / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    stage(directory, "stages.prepare")
    return directory


def write_corpus(directory: Path) -> None:
    """Random sentences over a few hundred words: enough windows for epochs that take a moment."""
    generator = torch.Generator().manual_seed(0)
    directory.mkdir()
    for split, lines in (("train", 2000), ("valid", 200), ("test", 200)):
        words = torch.randint(300, (lines, 12), generator=generator).tolist()
        text = "".join(" ".join(f"w{word}" for word in line) + "\n" for line in words)
        (directory / f"{split}.txt").write_text(text)


def environment() -> dict[str, str]:
    return dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))


def stage(directory: Path, module: str, *argv: str) -> str:
    result = subprocess.run([sys.executable, "-m", module, *argv], cwd=directory, env=environment(),
                            text=True, capture_output=True)
    if result.returncode != 0:
        raise CheckFailed(f"{module} {' '.join(argv)} exited {result.returncode}: "
                          f"{(result.stderr.strip() or result.stdout.strip()).splitlines()[-1]}")
    return result.stdout


def train(directory: Path, generation: str) -> str:
    return stage(directory, "stages.train", generation)


def kill_and_resume(directory: Path, generation: str) -> int:
    """SIGKILL the stage once its second epoch is logged, run it again; the epoch it resumed after."""
    process = subprocess.Popen([sys.executable, "-m", "stages.train", generation], cwd=directory,
                               env=environment(), text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    marker, seen = f"{generation} epoch {2:>3}/", []
    for line in process.stdout:
        seen.append(line)
        if line.startswith(marker):
            process.send_signal(signal.SIGKILL)
            break
    process.communicate()
    if process.returncode != -signal.SIGKILL:
        raise CheckFailed(f"{generation} ended before it could be killed (exit {process.returncode}): "
                          f"{''.join(seen[-1:]).strip()}")
    output = train(directory, generation)
    said = f"{generation}: resuming after epoch "
    resumed = [line for line in output.splitlines() if line.startswith(said)]
    if not resumed:
        raise CheckFailed(f"{generation} did not resume from its saved state")
    return int(resumed[0][len(said):].split()[0])


def digests(directory: Path) -> dict[str, str]:
    return {str(path.relative_to(directory)): hashlib.sha256(path.read_bytes()).hexdigest()
            for folder in OUTPUTS for path in sorted((directory / folder).rglob("*")) if path.is_file()}


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.gpu_check", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="check", required=True)
    commands.add_parser("device")
    commands.add_parser("lstm").add_argument("--device", default="cuda")
    resume = commands.add_parser("resume")
    resume.add_argument("chain", choices=list(CHAINS))
    resume.add_argument("--device", default="cuda")
    resume.add_argument("--generations", nargs="+", help="default: the whole chain")
    args = parser.parse_args(argv)
    try:
        if args.check == "device":
            check_device()
        elif args.check == "lstm":
            check_lstm(args.device)
        else:
            check_resume(args.chain, args.device, args.generations)
    except CheckFailed as failure:
        print(f"FAILED: {failure}", flush=True)
        sys.exit(1)


if __name__ == "__main__":
    main(sys.argv[1:])
