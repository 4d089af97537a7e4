"""Token-level distillation losses over the teacher's stored top-k (pure functions, no state).

`student_logits`: (N, V) at the answer positions; `teacher_ids` / `teacher_logprobs`: (N, K),
the teacher's K most likely next tokens there. The teacher distribution is renormalized over
its top-k; the student's log-probs are taken from its full softmax and gathered at those ids
(for reverse KL and JSD they are renormalized over the same support, so both sides live on it).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _teacher_probs(teacher_logprobs: torch.Tensor) -> torch.Tensor:
    return torch.softmax(teacher_logprobs.float(), dim=-1)


def forward_kl(student_logits, teacher_ids, teacher_logprobs) -> torch.Tensor:
    """KL(teacher || student): mass-covering, the usual KD loss."""
    p = _teacher_probs(teacher_logprobs)
    log_q = torch.log_softmax(student_logits.float(), dim=-1).gather(-1, teacher_ids)
    return (p * (torch.log(p.clamp_min(1e-12)) - log_q)).sum(-1).mean()


def reverse_kl(student_logits, teacher_ids, teacher_logprobs) -> torch.Tensor:
    """KL(student || teacher) on the teacher's top-k support: mode-seeking."""
    log_p = torch.log(_teacher_probs(teacher_logprobs).clamp_min(1e-12))
    log_q = torch.log_softmax(student_logits.float().gather(-1, teacher_ids), dim=-1)
    return (log_q.exp() * (log_q - log_p)).sum(-1).mean()


def jsd(student_logits, teacher_ids, teacher_logprobs, beta: float = 0.5) -> torch.Tensor:
    """Generalized Jensen-Shannon divergence (beta = 0.5 is the symmetric JSD), as in GKD."""
    log_p = torch.log(_teacher_probs(teacher_logprobs).clamp_min(1e-12))
    log_q = torch.log_softmax(student_logits.float().gather(-1, teacher_ids), dim=-1)
    log_m = torch.logsumexp(torch.stack([log_p + torch.log(torch.tensor(beta)), log_q + torch.log(torch.tensor(1 - beta))]), dim=0)
    kl_p = F.kl_div(log_m, log_p, log_target=True, reduction="none").sum(-1)
    kl_q = F.kl_div(log_m, log_q, log_target=True, reduction="none").sum(-1)
    return (beta * kl_p + (1 - beta) * kl_q).mean()


LOSSES = {"forward_kl": forward_kl, "reverse_kl": reverse_kl, "jsd": jsd}
