"""``paper_space(name)``: the paper's MobileNet search spaces as ``SearchSpace`` objects.

Encoding order is the paper's (Appendix H / E.3): the first bneck's width, then
per block the shared output width (a virtual layer searched before the layers
it couples) followed by each bneck's kernel x expanded width, then the 300M /
600M last bneck, then the 1x1 convs. A row with a single option is fixed and
not searched, as in the paper's counts.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from keras_layernas.spaces._mobilenet import (
    BneckSpec,
    MobileNetSpec,
    build_mobilenet,
    mobilenet_madds,
)
from keras_layernas.spaces._tables import PAPER_TABLES, BneckRow, PaperTable
from keras_layernas.surgery.space import SearchLayer, SearchSpace

PAPER_SPACES: tuple[str, ...] = tuple(PAPER_TABLES)


@dataclass(frozen=True)
class BneckChoice:
    """One option of a bneck layer: depthwise kernel x expanded width (x output width).

    ``filters`` is set only for the 300M/600M last bneck, whose output width is
    searched together with its expanded width. ``str()`` is the stable
    hyperparameter value used by ``SearchLayer.encode``.

    Example:
        >>> str(BneckChoice(5, 240)), str(BneckChoice(3, 1216, filters=280))
        ('k5_e240', 'k3_e1216_f280')
    """

    kernel: int
    expanded: int
    filters: int | None = None

    def __str__(self) -> str:
        text = f"k{self.kernel}_e{self.expanded}"
        return text if self.filters is None else f"{text}_f{self.filters}"


def _bneck_choices(row: BneckRow) -> tuple[BneckChoice, ...]:
    # Largest expanded width first, then largest kernel: options[0] is the
    # largest (costliest) choice, the space's base architecture.
    return tuple(BneckChoice(k, e) for e in row.expanded for k in row.kernels)


def _search_layers(table: PaperTable) -> list[SearchLayer]:
    """The searchable layers of ``table`` in the paper's encoding order."""
    layers = [SearchLayer("first_bneck", "width", table.first_bneck_filters,
                          ("first_bneck_project",))]
    for b, block in enumerate(table.blocks, start=1):
        bnecks = [f"block{b}_bneck{i}" for i in range(1, len(block.bnecks) + 1)]
        layers.append(SearchLayer(f"block{b}_filters", "block_filter", block.filters,
                                  tuple(f"{name}_project" for name in bnecks)))
        for name, row in zip(bnecks, block.bnecks):
            layers.append(SearchLayer(name, "kernel_expand", _bneck_choices(row),
                                      (f"{name}_expand", f"{name}_depthwise")))
    if table.last_bneck is not None:
        choices = tuple(BneckChoice(k, e, f) for f, e in table.last_bneck.pairs
                        for k in table.last_bneck.kernels)
        layers.append(SearchLayer("last_bneck", "kernel_expand_width", choices,
                                  ("last_bneck_expand", "last_bneck_depthwise",
                                   "last_bneck_project")))
    if len(table.pre_pool_conv) > 1:
        layers.append(SearchLayer("pre_pool_conv", "width", table.pre_pool_conv,
                                  ("pre_pool_conv1",)))
    if len(table.post_pool_conv) > 1:
        layers.append(SearchLayer("post_pool_conv", "width", table.post_pool_conv,
                                  ("post_pool_conv1",)))
    return layers


def _network(table: PaperTable, values: dict[str, Any]) -> MobileNetSpec:
    """The concrete network for ``{searchable layer name: chosen value}``."""
    bnecks = [BneckSpec("first_bneck", 3, None, values["first_bneck"],
                        table.first_bneck_stride, table.first_bneck_squeeze_excite,
                        table.first_bneck_activation)]
    for b, block in enumerate(table.blocks, start=1):
        filters = values[f"block{b}_filters"]
        for i, row in enumerate(block.bnecks, start=1):
            choice = values[f"block{b}_bneck{i}"]
            bnecks.append(BneckSpec(f"block{b}_bneck{i}", choice.kernel, choice.expanded,
                                    filters, row.stride, block.squeeze_excite,
                                    block.activation))
    if table.last_bneck is not None:
        # The last bneck keeps the style of the block before it.
        last_block = table.blocks[-1]
        choice = values["last_bneck"]
        bnecks.append(BneckSpec("last_bneck", choice.kernel, choice.expanded, choice.filters,
                                1, last_block.squeeze_excite, last_block.activation))
    # A one-option conv row is fixed: it is in the network but not in ``values``.
    pre_pool = (values.get("pre_pool_conv", table.pre_pool_conv[0]),) if table.pre_pool_conv else ()
    return MobileNetSpec(
        stem_filters=table.stem_filters,
        stem_activation=table.stem_activation,
        bnecks=tuple(bnecks),
        pre_pool_convs=pre_pool,
        post_pool_convs=(values.get("post_pool_conv", table.post_pool_conv[0]),),
        head_activation=table.head_activation,
        num_classes=table.num_classes,
    )


def paper_space(name: str) -> SearchSpace:
    """The LayerNAS paper's search space ``name`` (Appendix H, Tables 7/9/11/13).

    ``space.cost(arch)`` is the MAdds of the 224x224, 1001-class network,
    computed without building it; ``space.materialize(arch)`` builds it as a
    fresh (untrained) Keras model. ``options[0]`` of every layer is its largest
    choice, so ``space.base_arch`` is the largest network of the space.

    Args:
        name: one of :data:`PAPER_SPACES`.

    Returns:
        The ``SearchSpace``.

    Raises:
        ValueError: ``name`` is not one of the paper's spaces.

    Example:
        >>> space = paper_space("mobilenet_v3_small_60m")
        >>> len(space.layers), f"{space.num_architectures:.1e}", space.max_trials()
        (17, '5.0e+20', 117900)
        >>> space.layers[2].name, str(space.base_arch[2])
        ('block1_bneck1', 'k5_e144')
    """
    if name not in PAPER_TABLES:
        raise ValueError(
            f"Unknown paper search space. Received: name={name!r}. "
            f"Expected one of {list(PAPER_SPACES)}."
        )
    table = PAPER_TABLES[name]
    layers = _search_layers(table)
    names = [layer.name for layer in layers]

    def network(arch: Sequence) -> MobileNetSpec:
        return _network(table, dict(zip(names, arch)))

    def cost(arch: Sequence) -> int:
        return mobilenet_madds(network(arch))

    def build(arch: Sequence):
        return build_mobilenet(network(arch), name=name)

    return SearchSpace(layers, cost, build)
