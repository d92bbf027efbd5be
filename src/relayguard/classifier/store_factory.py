"""Pick the store the configuration asks for."""

from __future__ import annotations

from typing import TYPE_CHECKING

from relayguard.classifier.settings import ClassifierSettings
from relayguard.classifier.store import SqliteStore, Store, StoreError

if TYPE_CHECKING:
    from relayguard.config.schema import Settings


def open_store(settings: Settings, cfg: ClassifierSettings) -> Store:
    if cfg.backend == "redis":
        from relayguard.classifier.redis_store import RedisStore

        url = cfg.redis_url or settings.storage.redis_url
        if not url:
            raise StoreError('[classifier] backend = "redis" needs redis_url or [storage] redis_url')
        return RedisStore.from_url(url, cfg.redis_prefix)
    return SqliteStore(cfg.database_path(settings.storage.data_path()))
