"""Host-device synchronisation: where a run deliberately waits for the device, and a detector that proves it
waits nowhere else.

On a GPU the host queues kernels and runs ahead of the device. An operation that needs a device value on the
host (``.item()``, ``float(t)``, ``if t:``, ``.tolist()``, ``.cpu()``, ``.numpy()``), whose output shape
depends on values (``nonzero``, boolean-mask indexing, ``unique``, ``masked_select`` ...), or that copies host
data to the device (``torch.tensor(data, device=d)``, ``t.to(d)``) makes the host wait until the queue has
drained, and with a small network the device then idles between events.

Library code marks each deliberate sync or copy with :func:`deliberate` (the divergence check every
``run.check_every`` events; the eye's one copy per block of draws), and code that only touches host-resident
tensors with :func:`host_side` (the asynchronous eye's clock). :class:`SyncDetector` is a torch function
and dispatch mode that records every such operation with the line of code that caused it and, when ``strict``,
raises :class:`HostSyncError` at the first one outside a deliberate section. It works on CPU, where every
tensor is a host tensor: it judges the operation (what would synchronise on a device), not where the data
lives. Tensors that stay on the host in a device run as well (``host_tensors``, e.g. the step counters that
torch.optim keeps on the CPU, :func:`optimizer_host_tensors`) are exempt from the scalar-read rule.
"""
from __future__ import annotations

import sys
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode

_SECTIONS: list[str] = []  #: the deliberate sections now open (innermost last)
_HOST_SIDE: list[str] = []  #: the host-side sections now open
_ACTIVE: list["SyncDetector"] = []  #: detectors now entered

aten = torch.ops.aten

#: ops that read a device value on the host (``item``, ``float``, ``int``, ``bool``, ``index`` of a tensor)
SCALAR_READS = {aten._local_scalar_dense.default}
#: ops whose output shape (or Python result) depends on tensor values
DATA_DEPENDENT = {aten.nonzero.default, aten.masked_select.default, aten._unique2.default, aten.unique_dim.default,
                  aten.unique_consecutive.default, aten.bincount.default, aten.repeat_interleave.Tensor,
                  aten.equal.default, aten.is_nonzero.default}
#: boolean-mask indexing (``x[mask]``, ``x[mask] = v``) computes ``nonzero(mask)`` first
INDEXING = {aten.index.Tensor, aten.index_put.default, aten.index_put_.default, aten._index_put_impl_.default}
#: tensor methods that move data to the host
HOST_READS = {torch.Tensor.tolist, torch.Tensor.numpy, torch.Tensor.cpu, torch.Tensor.__array__}
#: calls that create device tensors from host data when given a device
FROM_HOST = {torch.tensor, torch.as_tensor}

_OWN_FILE = Path(__file__).resolve()
_LIBRARIES = tuple(str(Path(m.__file__).resolve().parent) for m in (torch,))


class HostSyncError(RuntimeError):
    """An operation that would synchronise host and device ran outside a :func:`deliberate` section."""


@contextmanager
def deliberate(what: str) -> Iterator[None]:
    """Mark the enclosed host syncs and copies as intended (``what`` says why); a no-op outside a detector."""
    _SECTIONS.append(what)
    for detector in _ACTIVE:
        detector.sections[what] = detector.sections.get(what, 0) + 1
    try:
        yield
    finally:
        _SECTIONS.pop()


@contextmanager
def host_side(what: str) -> Iterator[None]:
    """Mark code that works only on tensors that live on the host in a device run too (``what`` says which: the
    asynchronous eye's clock, the Eye's host copy of its draws). Nothing in it can wait for the device, so a
    detector records nothing there (on a CPU it could not tell these tensors from would-be device ones)."""
    _HOST_SIDE.append(what)
    try:
        yield
    finally:
        _HOST_SIDE.pop()


@dataclass(frozen=True)
class Sync:
    """One synchronising operation: ``kind`` "sync" (the host waits for a device value) or "copy" (host data
    to the device), the ``op``, the line of code ``where`` it came from, and the deliberate ``section`` it ran
    in (None: unexpected)."""

    kind: str
    op: str
    where: str
    section: str | None


def optimizer_host_tensors(optimizers: Iterable[torch.optim.Optimizer]) -> list[torch.Tensor]:
    """The ``step`` counters of optimisers that are neither capturable nor fused: torch.optim keeps them on
    the CPU in a device run too, so reading them (as Adam does every step) does not synchronise."""
    out = []
    for opt in optimizers:
        for group in opt.param_groups:
            if group.get("capturable") or group.get("fused"):
                continue
            for p in group["params"]:
                step = opt.state.get(p, {}).get("step")
                if isinstance(step, torch.Tensor):
                    out.append(step)
    return out


def _caller() -> str:
    """The innermost frame outside torch and this module: ``path:line in function``."""
    frame = sys._getframe(2)
    while frame is not None:
        path = frame.f_code.co_filename
        if not path.startswith(_LIBRARIES) and Path(path).resolve() != _OWN_FILE and "<frozen" not in path:
            short = "/".join(Path(path).parts[-2:])
            return f"{short}:{frame.f_lineno} in {frame.f_code.co_name}"
        frame = frame.f_back
    return "?"


def _has_device(args: tuple, kwargs: dict) -> bool:
    """Whether a ``Tensor.to`` / ``torch.tensor`` call names a device (a move, not only a dtype change)."""
    if kwargs.get("device") is not None:
        return True
    return any(isinstance(a, (torch.device, str, int, torch.Tensor)) and not isinstance(a, bool) for a in args)


class _Functions(TorchFunctionMode):
    def __init__(self, detector: "SyncDetector") -> None:
        super().__init__()
        self.detector = detector

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in HOST_READS:
            self.detector.record("sync", f"Tensor.{func.__name__}")
        elif func in (torch.Tensor.to, torch.Tensor.cuda) and (func is torch.Tensor.cuda or _has_device(args[1:], kwargs)):
            self.detector.record("copy", f"Tensor.{func.__name__}(device)")
        elif func in FROM_HOST and kwargs.get("device") is not None:
            self.detector.record("copy", f"torch.{func.__name__}(host data, device=...)")
        return func(*args, **kwargs)


class _Dispatch(TorchDispatchMode):
    def __init__(self, detector: "SyncDetector") -> None:
        super().__init__()
        self.detector = detector

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in SCALAR_READS:
            if not self.detector.is_host(args[0]):
                self.detector.record("sync", "item/float/int/bool of a tensor (aten._local_scalar_dense)")
        elif func in DATA_DEPENDENT:
            self.detector.record("sync", f"{func} (output shape depends on values)")
        elif func in INDEXING and any(i is not None and i.dtype in (torch.bool, torch.uint8) for i in args[1]):
            self.detector.record("sync", f"{func} with a boolean mask (nonzero)")
        return func(*args, **kwargs)


class SyncDetector:
    """Within ``with SyncDetector(...) as d:``, every host sync and host-to-device copy is recorded in
    ``d.syncs``; with ``strict``, one outside a :func:`deliberate` section raises :class:`HostSyncError`.
    ``host_tensors()`` lists tensors that live on the host in a device run (exempt from scalar reads)."""

    def __init__(self, strict: bool = True, host_tensors: Callable[[], Iterable[torch.Tensor]] = tuple) -> None:
        self.strict = strict
        self.host_tensors = host_tensors
        self.syncs: list[Sync] = []
        self.sections: dict[str, int] = {}  #: how often each deliberate section was entered
        self._stack: ExitStack | None = None

    def is_host(self, t: torch.Tensor) -> bool:
        ptr = t.untyped_storage().data_ptr()
        return any(h.untyped_storage().data_ptr() == ptr for h in self.host_tensors())

    def record(self, kind: str, op: str) -> None:
        if _HOST_SIDE:
            return
        section = _SECTIONS[-1] if _SECTIONS else None
        sync = Sync(kind, op, _caller(), section)
        self.syncs.append(sync)
        if self.strict and section is None:
            raise HostSyncError(f"host-device {kind} outside a deliberate section: {op} at {sync.where}")

    def unexpected(self) -> list[Sync]:
        return [s for s in self.syncs if s.section is None]

    def count(self, kind: str, section: str | None = "any") -> int:
        """How many ``kind`` operations ran (in ``section``; "any": wherever)."""
        return sum(s.kind == kind and (section == "any" or s.section == section) for s in self.syncs)

    def __enter__(self) -> "SyncDetector":
        self._stack = ExitStack()
        self._stack.enter_context(_Functions(self))
        self._stack.enter_context(_Dispatch(self))
        _ACTIVE.append(self)
        return self

    def __exit__(self, *exc) -> None:
        assert self._stack is not None
        _ACTIVE.remove(self)
        self._stack.close()
        self._stack = None
