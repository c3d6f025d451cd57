"""The vendor registry: vendors, brands, sources and engagement windows from YAML."""
