"""Tasdid's own rows beside the task library's: the task workers' leases (tasdid.core.worker)."""

from django.db import models


class WorkerLease(models.Model):
    """A running ``tasdid worker`` process, renewed by its heartbeat. A task left RUNNING by a worker whose lease
    has expired (or was never written) is taken again by the recovery pass (tasdid.core.worker)."""

    worker_id = models.CharField(max_length=64, primary_key=True, verbose_name="identifiant du worker")
    host = models.CharField(max_length=255, verbose_name="hôte")
    pid = models.PositiveIntegerField(verbose_name="PID")
    started_at = models.DateTimeField(verbose_name="démarré le")
    beat_at = models.DateTimeField(db_index=True, verbose_name="dernier signe de vie")

    class Meta:
        verbose_name = "bail de worker"
        verbose_name_plural = "baux de workers"

    def __str__(self) -> str:
        return f"{self.worker_id} ({self.host}, pid {self.pid})"
