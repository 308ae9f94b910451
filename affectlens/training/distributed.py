"""Training in several processes with PyTorch's own engine: torchrun, a process group, DDP.

``torchrun --nproc-per-node N -m affectlens train ...`` starts N copies of the command and tells
each who it is through environment variables (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR``, ``MASTER_PORT``); several machines join through a rendezvous endpoint the same
way. This module reads them, starts the process group (NCCL between CUDA GPUs, gloo on CPUs),
gives each process its device, wraps the model in :class:`~torch.nn.parallel.DistributedDataParallel`
(gradients averaged across processes in every backward pass) and provides the few collectives the
training loop needs. Without torchrun (or with one process) every call here is a no-op, so the
same loop and the same config serve 1 or N processes.

What each process does is decided in :mod:`affectlens.training.loop`: every process trains on its
share of each global batch (:class:`~affectlens.data.sampling.ShardedBatches`) and validates a
share of the validation set, whose predictions are gathered so that every process computes the
same metrics (the scheduler and early stopping must decide alike everywhere); only rank 0 writes
the run folder, logs and shows progress.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any, TypeVar

import torch
import torch.distributed as dist
from torch import nn

from affectlens.errors import AffectlensError

T = TypeVar("T")

#: the variables torchrun sets for every process it starts
LAUNCH_VARIABLES = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


@dataclass(frozen=True)
class ProcessGroup:
    """Where this process stands among the processes of one run (rank 0 of 1 when not distributed)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str = ""

    @property
    def active(self) -> bool:
        """More than one process trains: collectives and gradient averaging are needed."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes the run folder, logs and shows progress."""
        return self.rank == 0

    def all_sum(self, values: list[float], device: torch.device) -> list[float]:
        """The element-wise sum of ``values`` over all processes (training loss, accuracy counts)."""
        if not self.active:
            return list(values)
        tensor = torch.tensor(values, dtype=torch.float64, device=device if self.backend == "nccl" else "cpu")
        dist.all_reduce(tensor)
        return tensor.tolist()

    def gather(self, value: T) -> list[T]:
        """Every process's ``value``, in rank order, on every process (predictions, RNG states)."""
        if not self.active:
            return [value]
        gathered: list[Any] = [None] * self.world_size
        dist.all_gather_object(gathered, value)
        return gathered

    def broadcast(self, value: T) -> T:
        """Rank 0's ``value`` on every process (the run folder's name)."""
        if not self.active:
            return value
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def shard(self, n: int) -> range:
        """This process's contiguous share of ``n`` items (validation samples); the shares cover all ``n``."""
        return range(self.rank * n // self.world_size, (self.rank + 1) * n // self.world_size)


def launch_environment() -> ProcessGroup:
    """The rank, world size and local rank torchrun gave this process (rank 0 of 1 without torchrun)."""
    values = {}
    for name in LAUNCH_VARIABLES:
        text = os.environ.get(name)
        if text is None:
            continue
        try:
            values[name] = int(text)
        except ValueError:
            raise AffectlensError(f"environment variable {name}={text!r} is not a whole number") from None
    world_size = values.get("WORLD_SIZE", 1)
    rank = values.get("RANK", 0)
    if world_size < 1 or not 0 <= rank < world_size:
        raise AffectlensError(f"environment: RANK {rank} is not a process of WORLD_SIZE {world_size}")
    return ProcessGroup(rank, world_size, values.get("LOCAL_RANK", 0))


def start_process_group(device: torch.device) -> tuple[ProcessGroup, torch.device]:
    """Join the run's process group, if torchrun started several processes, and pick this process's device.

    ``device`` is the one the config asks for (``auto`` already resolved). CUDA: each process
    takes GPU ``LOCAL_RANK`` of its machine and the processes talk over NCCL; CPU: gloo. A single
    named GPU (``cuda:1``) cannot serve several processes and Apple's MPS has no backend, so both
    are refused with several processes.
    """
    group = launch_environment()
    if not group.active:
        return group, device
    if device.type == "cuda":
        if device.index is not None:
            raise AffectlensError(f"device {device} names one GPU, but torchrun started {group.world_size} processes; "
                                  "use device cuda or auto (each process takes GPU LOCAL_RANK)")
        if group.local_rank >= torch.cuda.device_count():
            raise AffectlensError(f"process LOCAL_RANK {group.local_rank} has no GPU: this machine has "
                                  f"{torch.cuda.device_count()}; start at most that many processes per node")
        device = torch.device("cuda", group.local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    elif device.type == "cpu":
        backend = "gloo"
    else:
        raise AffectlensError(f"distributed training runs on CUDA GPUs or CPUs, not on {device.type}; "
                              "use device cuda, cpu or auto")
    if not dist.is_initialized():
        dist.init_process_group(backend, device_id=device if backend == "nccl" else None)
    if not group.is_main:  # one process speaks: warnings about the data would otherwise repeat N times
        logging.getLogger("affectlens").setLevel(logging.ERROR)
    return ProcessGroup(group.rank, group.world_size, group.local_rank, backend), device


def stop_process_group() -> None:
    """Leave the process group (the end of a distributed run)."""
    if dist.is_initialized():
        dist.destroy_process_group()


def wrap_model(model: nn.Module, group: ProcessGroup, device: torch.device,
               sync_batchnorm: bool = False) -> tuple[nn.Module, nn.Module]:
    """``(model, training_model)``: the model itself (for weights, validation and checkpoints) and
    what the training step calls (DDP around it when distributed, else the model).

    DDP starts every process from rank 0's parameters and averages gradients in the backward
    pass. ``sync_batchnorm`` turns BatchNorm layers into SyncBatchNorm (statistics over the global
    batch rather than each process's share); PyTorch runs it on GPUs only.
    """
    if not group.active:
        return model, model
    if sync_batchnorm:
        if device.type != "cuda":
            raise AffectlensError("sync_batchnorm needs CUDA GPUs (PyTorch's SyncBatchNorm does not run on CPUs); "
                                  "set sync_batchnorm=false")
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    ddp = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    return model, ddp


def launch_rank() -> int:
    """This process's rank as torchrun set it (0 without torchrun): commands print their result on rank 0 only."""
    return launch_environment().rank
