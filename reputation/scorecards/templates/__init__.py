"""Templates shipped with the package (a package so the wheel carries them)."""
