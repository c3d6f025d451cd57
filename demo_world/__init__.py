"""The embedded demo: a deterministic fictional review world, its four sites and a local server."""

from demo_world.generator import (
    DemoManifest,
    demo_registry,
    generate_site,
    load_manifest,
    write_demo_registry,
)
from demo_world.server import serve_directory

__all__ = ["DemoManifest", "demo_registry", "generate_site", "load_manifest", "serve_directory",
           "write_demo_registry"]
