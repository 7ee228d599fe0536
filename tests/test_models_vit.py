"""models.ViT: the same model as PyTorch builds from torch.nn with the same weights (its
state_dict loads strictly, then one forward and backward agree), its parameter count, DeiT's
distillation token and heads, and the bad inputs."""

import numpy as np
import pytest

import minigrad as mg
from minigrad.models import ViT
from test_nn_layers import assert_same_step, torch_step

SMALL = dict(image_size=8, patch_size=4, in_channels=2, num_classes=3, dim=16, depth=2,
             heads=4, mlp_dim=24)


def torch_vit(torch, image_size, patch_size, in_channels, num_classes, dim, depth, heads,
              mlp_dim, distillation=False):
    """``models.ViT`` written with torch.nn under the same attribute names."""
    nn = torch.nn

    class TorchViT(nn.Module):
        def __init__(self):
            super().__init__()
            tokens = 1 + distillation + (image_size // patch_size) ** 2
            self.patch_embed = nn.Conv2d(in_channels, dim, patch_size, stride=patch_size)
            self.cls_token = nn.Parameter(torch.randn(1, 1, dim))
            if distillation:
                self.dist_token = nn.Parameter(torch.randn(1, 1, dim))
            self.pos_embed = nn.Parameter(torch.randn(1, tokens, dim))
            layer = nn.TransformerEncoderLayer(dim, heads, mlp_dim, 0.0, "gelu",
                                               batch_first=True, norm_first=True)
            self.encoder = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
            self.norm = nn.LayerNorm(dim)
            self.head = nn.Linear(dim, num_classes)
            if distillation:
                self.head_dist = nn.Linear(dim, num_classes)

        def forward(self, x):
            x = self.patch_embed(x).flatten(2).transpose(1, 2)
            extra = [self.cls_token] + ([self.dist_token] if distillation else [])
            x = torch.cat([t.expand(len(x), -1, -1) for t in extra] + [x], 1) + self.pos_embed
            x = self.norm(self.encoder(x))
            logits = self.head(x[:, 0])
            return (logits + self.head_dist(x[:, 1])) / 2 if distillation else logits

    return TorchViT()


def vit_step(torch, distillation):
    torch.manual_seed(0)
    model = torch_vit(torch, distillation=distillation, **SMALL).eval()
    x = np.random.default_rng(0).standard_normal((3, 2, 8, 8)).astype(np.float32)
    return torch_step(torch, model, x)


@pytest.mark.parametrize("distillation", [False, True], ids=["vit", "deit"])
def test_vit_equals_the_torch_nn_model_with_the_same_weights(distillation, torch_reference):
    expected = torch_reference(f"vit_{distillation}", lambda torch: vit_step(torch, distillation))
    assert_same_step(ViT(distillation=distillation, **SMALL).eval(), expected, rtol=1e-4,
                     atol=1e-5)


def test_default_vit_has_139018_parameters():
    """dim 64, 4 layers, mlp 128, 16 patches of 7x7: the patch conv 3,200, the class token and
    17 positions 1,152, per layer 33,472 (attention 16,640, feed-forward 16,576, two norms
    256), the final norm 128 and the head 650: what torch.nn's model counts too."""
    counts = {name: p.numel() for name, p in ViT().named_parameters()}
    assert counts["patch_embed.weight"] + counts["patch_embed.bias"] == 64 * 49 + 64
    assert counts["cls_token"] + counts["pos_embed"] == 64 + 17 * 64
    layer = sum(n for name, n in counts.items() if name.startswith("encoder.layers.0."))
    assert layer == (3 * 64 * 64 + 3 * 64) + (64 * 64 + 64) + (64 * 128 + 128) + (128 * 64 + 64) \
        + 4 * 64
    assert sum(counts.values()) == 3_200 + 1_152 + 4 * layer + 128 + 650 == 139_018


def test_deit_returns_both_heads_in_training_and_their_mean_in_eval():
    mg.manual_seed(0)
    model = ViT(distillation=True, **SMALL)
    x = mg.randn(5, 2, 8, 8)
    cls_logits, dist_logits = model(x)
    assert cls_logits.shape == dist_logits.shape == (5, 3)
    assert not np.allclose(cls_logits.numpy(), dist_logits.numpy())
    model.eval()
    np.testing.assert_allclose(model(x).numpy(), (cls_logits.numpy() + dist_logits.numpy()) / 2,
                               rtol=1e-6, atol=1e-6)


def test_image_size_not_a_multiple_of_the_patch_size_names_both():
    with pytest.raises(ValueError, match="image_size 28 is not a multiple of patch_size 5"):
        ViT(patch_size=5)
