"""Monitoring: the metrics scrape, with the versions of the models this process serves."""

from __future__ import annotations

from managers.models import ModelManager
from services import metrics


class MonitoringManager:
    @staticmethod
    def scrape() -> tuple[bytes, str]:
        """Every metric in Prometheus' text format, and its content type."""
        metrics.set_model_info(ModelManager.served_models())
        return metrics.exposition()
