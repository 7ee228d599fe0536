"""DeiT's training step (Touvron et al. 2021): a ViT with a distillation token,
``models.ViT(distillation=True)``, learns from the labels through its class token and from a
frozen teacher (a CNN in the paper) through its distillation token:

    (c, d) = student(x)                       both heads, with their graph
    t = teacher(x)                            eval mode, no graph, never trained
    L = (1 - alpha) CE(y, c) + alpha CE(argmax t, d)          (``deit_loss``, hard)

    fit(student, loader, optimizer, DeiTStep(teacher), epochs)

The teacher sees the same (augmented) batch as the student, so its decision is about the image
the student is shown, as in the paper.
"""

from minigrad.autograd import no_grad
from minigrad.distill.losses import check_alpha, check_temperature, deit_loss
from minigrad.nn import functional as F
from minigrad.train import TrainStep


class DeiTStep(TrainStep):
    """``fit``'s step for a DeiT student: returns ((c + d) / 2, L), the mean being DeiT's
    prediction, which the metrics see. In eval mode (``evaluate``) the student gives that mean
    itself, and the loss is its cross-entropy with the labels."""

    def __init__(self, teacher, distillation="hard", alpha=0.5, T=1.0):
        if distillation not in ("hard", "soft"):
            raise ValueError(f"DeiTStep: distillation must be 'hard' or 'soft', got "
                             f"{distillation!r}")
        check_alpha(alpha)
        check_temperature(T)
        self.teacher, self.distillation, self.alpha, self.T = teacher, distillation, alpha, T

    def __call__(self, model, inputs, targets):
        outputs = model(inputs)
        if not isinstance(outputs, tuple):
            return outputs, F.cross_entropy(outputs, targets)
        cls_logits, dist_logits = outputs
        self.teacher.eval()
        with no_grad():
            teacher_logits = self.teacher(inputs)
        loss = deit_loss(cls_logits, dist_logits, teacher_logits, targets, self.distillation,
                         self.alpha, self.T)
        return (cls_logits + dist_logits) / 2, loss
