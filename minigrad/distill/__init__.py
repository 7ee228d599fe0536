"""``minigrad.distill``: knowledge distillation, a small student trained from a large teacher.

    from minigrad import distill
    distiller = distill.Distiller(teacher, student, [distill.KD(T=4, alpha=0.9)],
                                  cache_teacher_logits=True)
    optimizer = SGD(distiller.parameters(), lr=0.05, momentum=0.9)   # never the teacher
    history = fit(distiller, loader, optimizer, distiller.step, epochs=10,
                  callbacks=[distill.DistillationLog(distiller)])
    history.series("kd_kl")                                          # each term, per epoch

Losses (``losses``), minigrad ops all the way, so gradients reach the student; the teacher's
tensors are detached:
    kd_loss(student_logits, teacher_logits, targets, T=4.0, alpha=0.9)
        (1 - alpha) CE(y, s) + alpha T^2 KL(softmax(t/T) || softmax(s/T)), batchmean
        (Hinton, Vinyals & Dean 2015)
    soft_target_loss(student_logits, teacher_logits, T)    the T^2 KL part alone
    deit_loss(cls_logits, dist_logits, teacher_logits, targets, distillation="hard",
              alpha=0.5, T=1.0)                      DeiT's two heads (Touvron et al. 2021)
    logit_mse_loss(student_logits, teacher_logits)          1/2 ||s - t||^2 (Ba & Caruana 2014)
    hint_loss(student_feature, teacher_feature, adapter)    FitNets (Romero et al. 2015)
    hint_adapter(student_shape, teacher_shape)              its regressor: Linear or 1x1 Conv2d
    attention_map(feature, p=2), attention_transfer_loss(student_feature, teacher_feature, p=2)
                                                            (Zagoruyko & Komodakis 2017)
    similarity_preserving_loss(student_feature, teacher_feature)   (Tung & Mori 2019)
    l2_normalize(x, eps=1e-12); check_temperature(T), check_alpha(alpha), check_logits(...)

Training (``distiller``):
    Distiller(teacher, student=None, terms, cache_teacher_logits=False)   (True, or a dict
        shared by distillers of the same teacher)
        an nn.Module: forward returns the student's logits; step, fit's TrainStep;
        loss(student_logits, teacher_logits, targets, features); teacher frozen, eval mode,
        no_grad, outside the module tree; forward hooks read the named layers the terms need
        (recording()); student=None: born-again (self-distillation); teacher_logits(x),
        last_terms, cache_hits / cache_misses, remove_hooks()
    DistillationStep(distiller)           distiller.step: runs the student and the teacher,
                                          returns (student logits, loss)
    terms (DistillationTerm subclasses, each a Module logging under its keys):
        KD(T, alpha)                      -> "kd_ce", "kd_kl"
        CrossEntropy(weight)              -> "ce"
        LogitMatching(weight)             -> "logit_mse"
        Hint(student_layer, teacher_layer, adapter, weight)            -> "hint"
        AttentionTransfer([(student_layer, teacher_layer), ...], weight=500)  -> "attention"
        SimilarityPreserving([(student_layer, teacher_layer), ...], weight=3000) -> "similarity"
    DistillationLog(distiller)            fit callback: every term into History.steps/epochs
    DistillationBatch                     what a term's forward receives
    born_again_student(teacher)           the teacher's architecture, freshly initialized

DeiT (``deit``): DeiTStep(teacher, distillation="hard", alpha=0.5, T=1.0), fit's step for a
    models.ViT(distillation=True) student: deit_loss on both heads, a frozen teacher.
"""

from minigrad.distill.deit import DeiTStep
from minigrad.distill.distiller import (AttentionTransfer, CrossEntropy, DistillationBatch,
                                        DistillationLog, DistillationStep, DistillationTerm,
                                        Distiller, Hint, KD, LogitMatching, SimilarityPreserving,
                                        born_again_student)
from minigrad.distill.losses import (attention_map, attention_transfer_loss, check_alpha,
                                     check_logits, check_temperature, deit_loss, hint_adapter,
                                     hint_loss, kd_loss, l2_normalize, logit_mse_loss,
                                     similarity_preserving_loss, soft_target_loss)

__all__ = ["AttentionTransfer", "CrossEntropy", "DeiTStep", "DistillationBatch", "DistillationLog",
           "DistillationStep", "DistillationTerm", "Distiller", "Hint", "KD", "LogitMatching",
           "SimilarityPreserving", "attention_map", "attention_transfer_loss",
           "born_again_student", "check_alpha", "check_logits", "check_temperature", "deit_loss",
           "hint_adapter", "hint_loss", "kd_loss", "l2_normalize", "logit_mse_loss",
           "similarity_preserving_loss", "soft_target_loss"]
