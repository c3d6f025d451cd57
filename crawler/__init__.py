"""Scrapy project: settings, items, pipelines, middlewares and pure extractors."""
