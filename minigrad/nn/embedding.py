"""``Embedding``: a lookup table of ``num_embeddings`` vectors of size ``embedding_dim``.

out[..., :] = weight[input[...], :] for integer indices of any shape (``nn.functional.embedding``:
a read at positions, whose backward adds the gradients of repeated indices up). PyTorch's
arguments, parameter name and initialization: weight ~ N(0, 1), with row ``padding_idx`` zero
and kept out of the gradient, so a PyTorch ``state_dict`` loads.
"""

import numpy as np

from minigrad.nn import functional as F
from minigrad.nn import init
from minigrad.nn.module import Module, Parameter


class Embedding(Module):
    """out = weight[input]: row i of ``weight`` (num_embeddings, embedding_dim) for index i.

    ``padding_idx`` (negative counts from the end, as in PyTorch): that row starts as zeros
    and its gradient is always zero, so training leaves it as it is."""

    def __init__(self, num_embeddings, embedding_dim, padding_idx=None):
        super().__init__()
        for argument, value in (("num_embeddings", num_embeddings),
                                ("embedding_dim", embedding_dim)):
            if value < 0:
                raise ValueError(f"Embedding: {argument} must be non-negative, got {value!r}")
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.padding_idx = F._padding_index(padding_idx, num_embeddings)
        self.weight = Parameter(np.empty((num_embeddings, embedding_dim), dtype=np.float32))
        self.reset_parameters()

    def reset_parameters(self):
        """weight ~ N(0, 1), then row ``padding_idx`` (if any) set to zero."""
        init.normal_(self.weight)
        if self.padding_idx is not None:
            self.weight.data[self.padding_idx] = 0

    def forward(self, input):
        return F.embedding(input, self.weight, self.padding_idx)

    def extra_repr(self):
        text = f"{self.num_embeddings}, {self.embedding_dim}"
        return text if self.padding_idx is None else text + f", padding_idx={self.padding_idx}"
