"""Small reference models the lessons share."""

from minigrad import nn
from minigrad.creation import zeros
from minigrad.ops.shape import cat


class LeNet5(nn.Module):
    """LeNet-5 (LeCun et al. 1998) in its common modern form, for 1x28x28 images:

        conv 5x5, 6 maps, padding 2 -> ReLU -> max-pool 2   (6 x 14 x 14)
        conv 5x5, 16 maps           -> ReLU -> max-pool 2   (16 x 5 x 5)
        flatten -> 120 -> ReLU -> 84 -> ReLU -> num_classes

    The original used scaled tanh units and trainable average pooling ("subsampling"); ReLU
    and max pooling train faster and reach the same accuracy. 61,706 parameters.
    """

    def __init__(self, num_classes=10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(16 * 5 * 5, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
            nn.Linear(84, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x))


class MLP(nn.Module):
    """A multilayer perceptron: Linear layers with ReLU between them, e.g.
    ``MLP([784, 300, 100, 10])``; images are flattened first. Optionally BatchNorm1d before each
    ReLU and Dropout after it."""

    def __init__(self, sizes, dropout=0.0, batchnorm=False):
        super().__init__()
        layers = [nn.Flatten()]
        for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
            layers.append(nn.Linear(n_in, n_out))
            if i < len(sizes) - 2:
                if batchnorm:
                    layers.append(nn.BatchNorm1d(n_out))
                layers.append(nn.ReLU())
                if dropout:
                    layers.append(nn.Dropout(dropout))
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        return self.layers(x)


class ViT(nn.Module):
    """A Vision Transformer (Dosovitskiy et al. 2021) for small images:

        patches: a Conv2d with kernel = stride = patch_size, (N, C, H, W) -> (N, n, dim),
                 n = (image_size / patch_size)^2 tokens, one per patch
        tokens:  [cls; patch tokens] + pos, a learned class token and learned positions
        encoder: ``depth`` pre-norm TransformerEncoderLayers (GELU, ``heads`` heads, feed-forward
                 width ``mlp_dim``), then a LayerNorm
        head:    Linear(dim, num_classes) on the class token's output

    The defaults (28x28 MNIST, patch 7: 16 tokens and the class token, dim 64, 4 layers of 4
    heads) have 139,018 parameters, as ``torch.nn`` builds the same model. The class token
    starts at zero and the positions at N(0, 0.02^2), as in the paper's code.

    With ``distillation=True`` it is DeiT's model (Touvron et al. 2021): a second learned
    token, ``dist``, after the class token, read by a second head, ``head_dist``. In training
    mode forward returns both heads' logits ``(cls_logits, dist_logits)`` (the first trained on
    the labels, the second on a teacher's, ``distill.deit_loss``); in eval mode their mean,
    DeiT's prediction.
    """

    def __init__(self, image_size=28, patch_size=7, in_channels=1, num_classes=10, dim=64,
                 depth=4, heads=4, mlp_dim=128, dropout=0.0, distillation=False):
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"ViT: image_size {image_size} is not a multiple of "
                             f"patch_size {patch_size}")
        num_patches = (image_size // patch_size) ** 2
        self.distillation = distillation
        num_tokens = 2 if distillation else 1
        self.patch_embed = nn.Conv2d(in_channels, dim, patch_size, stride=patch_size)
        self.cls_token = nn.Parameter(zeros(1, 1, dim))
        self.dist_token = nn.Parameter(zeros(1, 1, dim)) if distillation else None
        self.pos_embed = nn.Parameter(zeros(1, num_tokens + num_patches, dim))
        nn.init.normal_(self.pos_embed, std=0.02)
        self.pos_drop = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(dim, heads, mlp_dim, dropout, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, depth)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)
        self.head_dist = nn.Linear(dim, num_classes) if distillation else None

    def tokens(self, x):
        """The encoder's input: (N, C, H, W) images -> (N, tokens, dim)."""
        patches = self.patch_embed(x).flatten(2).transpose(1, 2)
        extra = [self.cls_token] + ([self.dist_token] if self.distillation else [])
        extra = [token.expand(len(x), 1, token.shape[-1]) for token in extra]
        return self.pos_drop(cat(extra + [patches], dim=1) + self.pos_embed)

    def forward(self, x):
        x = self.norm(self.encoder(self.tokens(x)))
        logits = self.head(x[:, 0])
        if not self.distillation:
            return logits
        dist_logits = self.head_dist(x[:, 1])
        return (logits, dist_logits) if self.training else (logits + dist_logits) / 2
