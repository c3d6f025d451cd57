"""Scrapy commands of this project (``COMMANDS_MODULE``); each file is one command, named after it."""
