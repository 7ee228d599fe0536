"""``minigrad.nn``: Module and Parameter, layers (``layers``: linear, convolution, pooling,
batch normalization, dropout), layer and RMS normalization (``normalization``: LayerNorm,
RMSNorm), ``embedding`` (Embedding), ``attention`` (scaled_dot_product_attention,
MultiheadAttention), ``transformer`` (TransformerEncoderLayer, TransformerEncoder),
activations (``activation``), losses (``loss``), containers, ``functional`` (F), ``init`` and
``utils`` (gradient clipping, L1/L2 penalties, parametrizations)."""

from minigrad.nn import functional, init, utils
from minigrad.nn.activation import (CELU, ELU, SELU, Hardshrink, Hardsigmoid, Hardswish,
                                    Hardtanh, LogSigmoid, LogSoftmax, Mish, ReLU6, SiLU,
                                    Softplus, Softshrink, Softsign, Tanhshrink, Threshold)
from minigrad.nn.attention import MultiheadAttention
from minigrad.nn.containers import ModuleDict, ModuleList, Sequential
from minigrad.nn.embedding import Embedding
from minigrad.nn.layers import (GELU, AdaptiveAvgPool2d, AvgPool1d, AvgPool2d, BatchNorm1d,
                                BatchNorm2d, Conv1d, Conv2d, ConvTranspose1d, ConvTranspose2d,
                                Dropout, Flatten, Identity, LeakyReLU, Linear, MaxPool1d,
                                MaxPool2d, MaxUnpool2d, ReLU, Sigmoid, Softmax, Tanh, Upsample)
from minigrad.nn.loss import (BCELoss, BCEWithLogitsLoss, CosineEmbeddingLoss, CosineSimilarity,
                              CrossEntropyLoss, HuberLoss, KLDivLoss, L1Loss, MarginRankingLoss,
                              MSELoss, NLLLoss, PairwiseDistance, SmoothL1Loss, SoftMarginLoss,
                              TripletMarginLoss)
from minigrad.nn.module import Module, Parameter, RemovableHandle
from minigrad.nn.normalization import LayerNorm, RMSNorm
from minigrad.nn.transformer import TransformerEncoder, TransformerEncoderLayer
