"""``DecoderConfig``: the sizes of the 3D stage's decoder network, as a
:class:`~kinediff.PostureHMRConfig` nests them (``config.decoder_config``; which decoder is
``config.decoder``)."""

from __future__ import annotations

import numbers
from dataclasses import dataclass

from kinediff.core.config import ConfigMixin
from kinediff.decoders.m2p import M2PConfig

__all__ = ["DecoderConfig"]

#: Upper limits of the sizes: 16 times the paper's widths (128, 512), 12 times its depth (4),
#: 64 heads. The largest decoder they allow has about 2.4 billion parameters (10 GB in float32),
#: already beyond any training budget for this model: a saved config asking for more is a typo or
#: a corrupt file, refused before anything is allocated.
MAX_SIZES = {"dim": 2048, "ffn_dim": 8192, "num_layers": 48, "num_heads": 64}


@dataclass(frozen=True)
class DecoderConfig(ConfigMixin):
    """Sizes of the Graphormer decoder (:class:`~kinediff.decoders.M2PDecoder` or the one-step
    :class:`~kinediff.decoders.GraphormerRegressor`); defaults are the paper's ("embedding and
    transformer channels 128 and 512").

    The two sizes the model derives are not here, so nothing is said twice: the number of reverse
    steps T is the schedule's (``PostureHMRConfig.schedule_config.num_steps``) and the condition's
    width follows ``PostureHMRConfig.condition``. :meth:`m2p` adds them.

    Frozen: change one with ``dataclasses.replace(decoder, dim=64)``.

    Attributes:
        dim: token width (128).
        ffn_dim: feed-forward width (512).
        num_layers: Graphormer layers (4).
        num_heads: attention heads (4; must divide ``dim``).
        dropout: dropout probability in [0, 1) (0).

    Limits (:data:`MAX_SIZES`): ``dim`` <= 2048, ``ffn_dim`` <= 8192, ``num_layers`` <= 48,
    ``num_heads`` <= 64, each a positive integer (a bool, a float or a string is refused; numpy
    integers are read as ints); ``dropout`` a number in [0, 1) (NaN refused).

    Example:
        >>> from kinediff.decoders import DecoderConfig
        >>> DecoderConfig(dim=64, ffn_dim=128).m2p(num_steps=10, cond_dim=2).dim
        64
    """

    dim: int = 128
    ffn_dim: int = 512
    num_layers: int = 4
    num_heads: int = 4
    dropout: float = 0.0

    def __post_init__(self) -> None:
        for name in ("dim", "ffn_dim", "num_layers", "num_heads"):  # numpy integers too
            value = getattr(self, name)
            if isinstance(value, numbers.Integral) and not isinstance(value, bool):
                object.__setattr__(self, name, int(value))
        if isinstance(self.dropout, numbers.Real) and not isinstance(self.dropout, bool):
            object.__setattr__(self, "dropout", float(self.dropout))
        for name in ("dim", "ffn_dim", "num_layers", "num_heads"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
            if value > MAX_SIZES[name]:
                raise ValueError(f"{name} must be at most {MAX_SIZES[name]} (see "
                                 f"kinediff.decoders.config.MAX_SIZES), got {value}")
        if self.dim % self.num_heads:
            raise ValueError(f"dim ({self.dim}) must be divisible by num_heads ({self.num_heads})")
        if not isinstance(self.dropout, (int, float)) or isinstance(self.dropout, bool) or \
                not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {self.dropout!r}")

    def m2p(self, num_steps: int, cond_dim: int) -> M2PConfig:
        """The :class:`~kinediff.decoders.M2PConfig` of these sizes for ``num_steps`` reverse
        steps and a condition ``cond_dim`` wide per vertex."""
        return M2PConfig(dim=self.dim, ffn_dim=self.ffn_dim, num_layers=self.num_layers,
                         num_heads=self.num_heads, num_steps=num_steps, cond_dim=cond_dim,
                         dropout=self.dropout)
