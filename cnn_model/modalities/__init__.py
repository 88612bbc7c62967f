"""The modality registry: one module per modality defines its ModalitySpec; everything else reads SPECS.

A new modality is a new module here defining SPEC, listed in BUILT_IN. SPECS can also take one at
run time (SPECS.register, or SPECS.registered for a block); MODALITIES is a live view of its names,
so whatever reads it at call time (the app's schemas, the OpenAPI document, the model loader) sees
the change.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

from ..specs import ModalitySpec
from . import breast, cervical_cytology, chest_xray, skin_lesion

BUILT_IN: tuple[ModalitySpec, ...] = (skin_lesion.SPEC, chest_xray.SPEC, breast.SPEC, cervical_cytology.SPEC)


class ModalityRegistry(Mapping[str, ModalitySpec]):
    """Modality name -> spec, in registration order."""

    def __init__(self, specs: Sequence[ModalitySpec] = ()) -> None:
        self._specs: dict[str, ModalitySpec] = {}
        for spec in specs:
            self.register(spec)

    def __getitem__(self, name: str) -> ModalitySpec:
        return self._specs[name]

    def __iter__(self) -> Iterator[str]:
        return iter(tuple(self._specs))

    def __len__(self) -> int:
        return len(self._specs)

    def register(self, spec: ModalitySpec) -> ModalitySpec:
        if spec.name in self._specs:
            raise ValueError(f"modality {spec.name!r} is already registered")
        self._specs[spec.name] = spec
        return spec

    @contextmanager
    def registered(self, spec: ModalitySpec) -> Iterator[ModalitySpec]:
        """Inside the block spec is the modality of its name: added, or standing in for the registered one."""
        previous = self._specs.get(spec.name)
        self._specs[spec.name] = spec
        try:
            yield spec
        finally:
            if previous is None:
                del self._specs[spec.name]
            else:
                self._specs[spec.name] = previous

    def get_spec(self, name: str) -> ModalitySpec:
        try:
            return self._specs[name]
        except KeyError:
            raise ValueError(f"unknown modality {name!r}; valid: {', '.join(self._specs)}") from None


class ModalityNames(Sequence[str]):
    """The registry's names as they are at each use (a tuple taken at import would miss later ones)."""

    def __init__(self, registry: ModalityRegistry) -> None:
        self._registry = registry

    def __getitem__(self, index):
        return tuple(self._registry)[index]

    def __len__(self) -> int:
        return len(self._registry)

    def __contains__(self, name: object) -> bool:
        return name in self._registry

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, str):
            return tuple(self) == tuple(other)
        return NotImplemented

    __hash__ = None

    def __repr__(self) -> str:
        return repr(tuple(self))


SPECS = ModalityRegistry(BUILT_IN)
MODALITIES: Sequence[str] = ModalityNames(SPECS)
get_spec = SPECS.get_spec

__all__ = ["BUILT_IN", "MODALITIES", "SPECS", "ModalityRegistry", "get_spec"]
