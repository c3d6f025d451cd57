"""Scrapy's spider loader, importing only the module of the spider a crawl asks for.

Scrapy's own loader imports every module under ``SPIDER_MODULES`` when a crawler process starts.
A crawl process runs one spider, and the others bring heavy imports of their own (the discovery
spider's page reader, the Redis spider's client): about 0.25 s of every ``reputation crawl``'s
start went to spiders it never ran. By this project's rule a spider named ``X`` lives in the
module ``X`` of a ``SPIDER_MODULES`` package (``spiders/reviews.py`` holds ``reviews``), so
``load`` imports that module alone. A name outside the rule (``reviews_frontier``), ``list`` and
``find_by_request`` load every module, as Scrapy's loader does.
"""

from __future__ import annotations

import builtins
import importlib
from typing import TYPE_CHECKING

from scrapy.spiderloader import SpiderLoader

if TYPE_CHECKING:
    from scrapy import Request, Spider
    from scrapy.settings import BaseSettings


class OnDemandSpiderLoader(SpiderLoader):
    """``SPIDER_LOADER_CLASS``: the spider's own module on ``load``, every module when listing."""

    def __init__(self, settings: BaseSettings) -> None:
        self.everything_loaded = False
        super().__init__(settings)

    def _load_all_spiders(self) -> None:
        """Deferred from start-up until something needs the whole list (see ``load_everything``)."""

    def load_everything(self) -> None:
        if not self.everything_loaded:
            self.everything_loaded = True
            super()._load_all_spiders()

    def load(self, spider_name: str) -> type[Spider]:
        if spider_name not in self._spiders and not self.everything_loaded:
            for package in self.spider_modules:
                module_name = f"{package}.{spider_name}"
                try:
                    module = importlib.import_module(module_name)
                except ModuleNotFoundError as exc:
                    if not (module_name + ".").startswith(f"{exc.name}."):
                        raise  # the module is there and one of its own imports is missing
                    continue
                self._load_spiders(module)
            if spider_name not in self._spiders:
                self.load_everything()
        return super().load(spider_name)

    def list(self) -> list[str]:
        self.load_everything()
        return super().list()

    def find_by_request(self, request: Request) -> builtins.list[str]:
        self.load_everything()
        return super().find_by_request(request)
