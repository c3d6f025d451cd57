"""Mistakes found in a registry file, collected so that all of them are reported at once."""

from __future__ import annotations

from storage.errors import RegistryError


class Problems:
    """Collects ``FILE:LINE: field: problem`` lines; :meth:`raise_if_any` turns them into one error."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._found: list[tuple[int, str]] = []

    def add(self, line: int, where: str, message: str) -> None:
        self._found.append((line, f"{self.path}:{line}: {where}: {message}"))

    def __len__(self) -> int:
        return len(self._found)

    def raise_if_any(self) -> None:
        """Raise one RegistryError listing every mistake in file order."""
        if not self._found:
            return
        lines = [text for _, text in sorted(self._found, key=lambda found: found[0])]
        count = len(lines)
        raise RegistryError(f"{count} mistake{'s' if count > 1 else ''} in {self.path}:\n  " + "\n  ".join(lines))
