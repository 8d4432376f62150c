"""The ``run.py`` written into every bundle: TVM runtime only, no hwnas needed.

It imports nothing of TVM's compiler (``tvm.relax`` does), so that it also runs on a device
with a runtime-only TVM (``libtvm_runtime`` alone), as an emulated device's root has.
"""
from __future__ import annotations

__all__ = ["RUN_PY"]

RUN_PY = '''\
"""Classify an input with this bundle's compiled model, using only the TVM runtime and numpy.

    python run.py                 # the bundled sample (sample_input.npy), prints class and label
    python run.py image.npy       # an array shaped like manifest["input"]["shape"] (or C,H,W)
"""
import json
import os
import sys
from pathlib import Path

# TVM's thread pool otherwise takes half the CPUs on x86 (it assumes hyper-threading)
os.environ.setdefault("TVM_NUM_THREADS", str(len(os.sched_getaffinity(0))
                                           if hasattr(os, "sched_getaffinity") else os.cpu_count()))
import numpy as np  # noqa: E402
import tvm  # noqa: E402
from tvm.runtime.vm import VirtualMachine  # noqa: E402  (not tvm.relax: that needs the compiler)

here = Path(__file__).resolve().parent
manifest = json.loads((here / "manifest.json").read_text())
if manifest.get("target", {}).get("affinity") == "shared":
    # workers free to run on any core: one core busy with other work must not stall every
    # parallel region (TVM reads this when its pool first starts)
    os.environ.setdefault("TVM_BIND_THREADS", "0")
device = manifest.get("tvm_device", "cpu")          # the target's GPU kind (cuda, ...) or cpu
dev = tvm.device(device, 0)
if not dev.exist:
    sys.exit(f"this bundle runs on a {device} device (manifest.json: tvm_device), and this "
             f"machine has none that TVM's runtime can use")
shape = tuple(manifest["input"]["shape"])
path = Path(sys.argv[1]) if len(sys.argv) > 1 else here / "sample_input.npy"
x = np.load(path).astype("float32").reshape(shape)

vm = VirtualMachine(tvm.runtime.load_module(str(here / manifest["files"]["library"])), dev)
logits = vm["main"](tvm.runtime.tensor(x, dev)).numpy()[0]
p = np.exp(logits - logits.max())
p /= p.sum()
top = int(p.argmax())
names = manifest.get("classes") or [str(i) for i in range(len(p))]
line = f"class {top} ({names[top]}), p={p[top]:.3f}"
sample = manifest.get("sample")
if len(sys.argv) == 1 and sample:
    line += f"; true label {sample['label']} ({names[sample['label']]})"
print(line)
'''
