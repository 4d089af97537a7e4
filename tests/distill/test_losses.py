"""The distillation losses against plain references, and DPO at initialization."""

import math

import torch
import torch.nn.functional as F

from distill.losses import forward_kl, jsd, reverse_kl


def _full(V=11, N=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    s, t = torch.randn(N, V, generator=g), torch.randn(N, V, generator=g)
    ids = torch.arange(V).expand(N, V).contiguous()
    return s, torch.log_softmax(t, -1), ids


def test_forward_kl_equals_kl_div_when_k_is_the_vocabulary():
    s, t_lp, ids = _full()
    ref = F.kl_div(torch.log_softmax(s, -1), t_lp, log_target=True, reduction="batchmean")
    assert torch.allclose(forward_kl(s, ids, t_lp), ref, atol=1e-5)


def test_reverse_kl_equals_kl_div_swapped():
    s, t_lp, ids = _full()
    ref = F.kl_div(t_lp, torch.log_softmax(s, -1), log_target=True, reduction="batchmean")
    assert torch.allclose(reverse_kl(s, ids, t_lp), ref, atol=1e-5)


def test_jsd_is_symmetric_bounded_and_zero_on_equal():
    s, t_lp, ids = _full()
    a = jsd(s, ids, t_lp)
    b = jsd(t_lp.clone(), ids, torch.log_softmax(s, -1))
    assert torch.allclose(a, b, atol=1e-5) and 0 < a < math.log(2)
    assert jsd(t_lp.clone(), ids, t_lp) < 1e-6


def test_dpo_loss_is_log2_at_initialization(tiny_model):
    from peft import LoraConfig, get_peft_model

    from distill.dpo import dpo_loss, reference_logps
    from distill.packing import Item
    from distill.student import LORA_TARGETS, load_model

    model = get_peft_model(load_model(str(tiny_model)), LoraConfig(r=4, target_modules=LORA_TARGETS, task_type="CAUSAL_LM"))
    chosen, rejected = Item([5, 6, 7, 8, 9], 2), Item([5, 6, 70, 80], 2)
    with model.disable_adapter():  # the base as the reference
        ref = reference_logps(model, [(chosen, rejected)], show=False)[0]
    loss = dpo_loss(model, chosen, rejected, beta=0.1, ref=ref)
    assert abs(float(loss) - math.log(2)) < 1e-5  # lora_B starts at zero: policy == reference
    loss.backward()


def test_auto_autocast_is_bf16_only_where_the_cpu_computes_it():
    import torch

    from distill.packing import bf16_autocast

    assert bf16_autocast("auto") == bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    assert bf16_autocast("bf16") and not bf16_autocast("none")
