"""OSNet on OpenVINO: the same vectors as PyTorch (FP32), several times faster on a CPU.

Why: the embed stage runs OSNet up to four times per crop (two ensemble models, each with trained and
with camera BatchNorm statistics), and PyTorch's CPU kernels are slow for OSNet's many small
depthwise convolutions. Measured on this project's 2-core Xeon (batch 64, 256x128, one model):
PyTorch channels-last 123 crops/s, OpenVINO FP32 705 crops/s; vectors agree to cosine 1 - 1e-7.
Camera BN (every BatchNorm layer normalising with the batch's own statistics) is converted too:
its BatchNorm layers are replaced by explicit mean / variance ops before conversion (OpenVINO's
PyTorch frontend folds training-mode BatchNorm into the trained statistics, which would silently
give the plain vectors), 228 crops/s, cosine to PyTorch's training-mode output 1 - 1e-7.

Precision is pinned to FP32: OpenVINO's CPU default on AMX machines is bf16 (cosine ~0.994 to
FP32), which would make the same crop's vector depend on the machine. Conversions are cached on
disk (`<cache>/exports/<weights stem>-<sha12>-<variant>-v<N>_openvino_reid/`), written to a temp
folder and renamed; a cached export that does not load is rebuilt with a warning.
"""

from __future__ import annotations

import copy
import logging
import os
import shutil
import tempfile
import threading
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from smarttrace.assets import cache_dir, sha256_of
from tasks.embed_reid import osnet_outputs

log = logging.getLogger("smarttrace.reid")

EXPORT_VERSION = 2  # bump when the converted graphs change: old cache folders are then ignored
VARIANTS = ("plain", "camera_bn", "trunk", "stem")
_EXPORT_LOCK = threading.Lock()
_CORE_LOCK = threading.Lock()
_CORE = None


def openvino_available() -> bool:
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


def _core():  # noqa: ANN202 - openvino.Core, imported lazily
    global _CORE
    with _CORE_LOCK:
        if _CORE is None:
            import openvino

            _CORE = openvino.Core()
        return _CORE


class BatchStatNorm(torch.nn.Module):
    """A BatchNorm layer that always normalises with the batch's own statistics (biased variance, as
    PyTorch's training mode does), written as plain ops so an exporter cannot fold it away."""

    def __init__(self, norm: torch.nn.modules.batchnorm._BatchNorm) -> None:
        super().__init__()
        self.eps = float(norm.eps)
        self.weight = None if norm.weight is None else torch.nn.Parameter(norm.weight.detach().clone())
        self.bias = None if norm.bias is None else torch.nn.Parameter(norm.bias.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dims = [0, *range(2, x.dim())]
        mean = x.mean(dim=dims, keepdim=True)
        var = (x - mean).pow(2).mean(dim=dims, keepdim=True)
        y = (x - mean) * torch.rsqrt(var + self.eps)
        if self.weight is not None:
            shape = [1, -1] + [1] * (x.dim() - 2)
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y


def with_batch_statistics(model: torch.nn.Module) -> torch.nn.Module:
    """A copy of `model` whose every BatchNorm layer is a `BatchStatNorm`."""
    model = copy.deepcopy(model)

    def swap(module: torch.nn.Module) -> None:
        for name, child in module.named_children():
            if isinstance(child, torch.nn.modules.batchnorm._BatchNorm):
                setattr(module, name, BatchStatNorm(child))
            else:
                swap(child)

    swap(model)
    return model.eval()


class _Outputs(torch.nn.Module):
    """`osnet_outputs` of one variant as a module, for the converter."""

    def __init__(self, osnet: torch.nn.Module, variant: str) -> None:
        super().__init__()
        self.osnet = osnet
        self.variant = variant

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        outputs = osnet_outputs(self.osnet, x, self.variant)
        return outputs[0] if len(outputs) == 1 else tuple(outputs)


def _export_folder(weights: Path, variant: str) -> Path:
    name = f"{weights.stem}-{sha256_of(weights)[:12]}-{variant}-v{EXPORT_VERSION}_openvino_reid"
    return cache_dir() / "exports" / name


def _reid_source(osnet: torch.nn.Module, variant: str) -> torch.nn.Module:
    """The module one OSNet variant converts from (camera BN: BatchNorm as explicit batch statistics)."""
    return _Outputs(with_batch_statistics(osnet) if variant == "camera_bn" else copy.deepcopy(osnet).eval(), variant)


def _convert(module: torch.nn.Module, input_shape: tuple[int, ...]):  # noqa: ANN202 - openvino.Model
    import openvino

    source = module.float().eval().to(memory_format=torch.contiguous_format)
    example = torch.randn(4, *input_shape)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit tracing deprecation notes: library chatter, not the user's concern
        return openvino.convert_model(source, example_input=example, input=[(-1, *input_shape)])


def export_ir(build: Callable[[], torch.nn.Module], target: Path, input_shape: tuple[int, ...]) -> Path:
    """The cached OpenVINO IR in `target` of the module `build()` makes, for (n, *input_shape) inputs, converted
    once (temp folder, then rename, so a reader never sees half an export)."""
    if (target / "model.xml").is_file():
        return target
    import openvino

    with _EXPORT_LOCK:
        if (target / "model.xml").is_file():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(dir=target.parent, prefix=".export-"))
        try:
            log.info("converting %s to OpenVINO (once, cached)", target.name)
            openvino.save_model(_convert(build(), input_shape), str(work / "model.xml"), compress_to_fp16=False)
            shutil.rmtree(target, ignore_errors=True)
            os.replace(work, target)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return target


class OpenVinoModule:
    """One exported module, compiled on first use (FP32); safe to call from several threads.

    A cached export that does not load (torn, corrupt) is rebuilt once with a warning."""

    def __init__(self, build: Callable[[], torch.nn.Module], folder: Path, input_shape: tuple[int, ...]) -> None:
        self.build = build
        self.folder = folder
        self.input_shape = tuple(int(d) for d in input_shape)  # one input's shape, e.g. (3, 256, 128)
        self._compiled = None
        self._lock = threading.Lock()
        self._local = threading.local()  # one infer request per thread

    def _compile(self):  # noqa: ANN202 - openvino.CompiledModel
        with self._lock:
            if self._compiled is None:
                self._compiled = self._load()
            return self._compiled

    def _load(self):  # noqa: ANN202 - openvino.CompiledModel
        settings = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}
        folder = export_ir(self.build, self.folder, self.input_shape)
        try:
            return _core().compile_model(str(folder / "model.xml"), "CPU", settings)
        except Exception as exc:  # a torn or corrupt cache entry: rebuild it once
            log.warning("cached OpenVINO export %s does not load (%s): converting again", folder, exc)
            shutil.rmtree(folder, ignore_errors=True)
            folder = export_ir(self.build, self.folder, self.input_shape)
            return _core().compile_model(str(folder / "model.xml"), "CPU", settings)

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        """Outputs on an (n, *input_shape) float32 batch, as arrays the caller owns."""
        compiled = self._compile()
        request = getattr(self._local, "request", None)
        if request is None:
            request = self._local.request = compiled.create_infer_request()
        request.infer({0: np.ascontiguousarray(batch, dtype=np.float32)})
        return [request.get_output_tensor(i).data.copy() for i in range(len(compiled.outputs))]


class OpenVinoOsnet:
    """One OSNet's OpenVINO variants, each an `OpenVinoModule` compiled on first use."""

    def __init__(self, osnet: torch.nn.Module, weights: Path, input_hw: tuple[int, int]) -> None:
        self._modules = {
            variant: OpenVinoModule(lambda v=variant: _reid_source(osnet, v), _export_folder(weights, variant),
                                    (3, *input_hw))  # fmt: skip
            for variant in VARIANTS
        }

    def run(self, variant: str, batch: np.ndarray) -> list[np.ndarray]:
        """Outputs of `variant` on an (n, 3, H, W) float32 NCHW batch, as arrays the caller owns."""
        if variant not in self._modules:
            raise ValueError(f"unknown OSNet variant {variant!r} (one of {', '.join(VARIANTS)})")
        return self._modules[variant].run(batch)
