"""The ``run.py`` written into every bundle, beside ``runner.py`` (a copy of
``hwnas.runtime.bundle_runner``): TVM runtime only, no hwnas needed.

It imports nothing of TVM's compiler (``tvm.relax`` does), so that it also runs on a device
with a runtime-only TVM (``libtvm_runtime`` alone), as an emulated device's root has.
"""
from __future__ import annotations

import shutil
from pathlib import Path

__all__ = ["RUN_PY", "write_run_scripts"]

RUN_PY = '''\
"""Classify an input with this bundle's compiled model, using only the TVM runtime and numpy.

    python run.py                 # the bundled sample (sample_input.npy), prints class and label
    python run.py image.npy       # an array shaped like manifest["input"]["shape"] (or C,H,W)

In a program: ``from runner import Model; net = Model(folder); logits = net(x)``.
"""
import sys
from pathlib import Path

import numpy as np

here = Path(__file__).resolve().parent
sys.path.insert(0, str(here))
from runner import Model  # noqa: E402

try:
    net = Model(here)
except RuntimeError as exc:
    sys.exit(str(exc))
path = Path(sys.argv[1]) if len(sys.argv) > 1 else here / "sample_input.npy"
logits = net(np.load(path))[0]
p = np.exp(logits - logits.max())
p /= p.sum()
top = int(p.argmax())
names = net.manifest.get("classes") or [str(i) for i in range(len(p))]
line = f"class {top} ({names[top]}), p={p[top]:.3f}"
sample = net.manifest.get("sample")
if len(sys.argv) == 1 and sample:
    line += f"; true label {sample['label']} ({names[sample['label']]})"
print(line)
'''


def write_run_scripts(bundle: str | Path) -> None:
    """Write ``run.py`` and ``runner.py`` (the bundle's ``Model``) into ``bundle``."""
    from hwnas.runtime import bundle_runner

    bundle = Path(bundle)
    (bundle / "run.py").write_text(RUN_PY)
    shutil.copy2(Path(bundle_runner.__file__), bundle / "runner.py")
